import type { App } from "../../context";
import { registerBatchRoutes } from "./batch";
import { registerSettingsRoute } from "./settings";
import { registerSingleRoutes } from "./single";

export function registerTrackingRoutes(app: App) {
  registerSingleRoutes(app);
  registerBatchRoutes(app);
  registerSettingsRoute(app);
}
