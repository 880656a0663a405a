import type { App } from "../../context";
import { profileApi } from "../context";
import { registerEventsRoute } from "./events";
import { registerExternalIdsRoute } from "./external-ids";
import { registerLinksRoute } from "./links";
import { registerMembershipRoutes } from "./memberships";
import { registerMetadataRoute } from "./metadata";
import { registerTraitsRoute } from "./traits";

/** Segment's Profile API, with the workspace id as the space id. */
export function registerProfileApiRoutes(app: App) {
  app.use("/v1/spaces/:space/*", profileApi);
  registerTraitsRoute(app);
  registerEventsRoute(app);
  registerExternalIdsRoute(app);
  registerLinksRoute(app);
  registerMetadataRoute(app);
  registerMembershipRoutes(app);
}
