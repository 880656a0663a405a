import type { App } from "../context";
import { registerAuditLogRoute } from "./audit-log";
import { registerIdentityMergeRoutes } from "./identity-merges";
import { registerIdentityReviewRoutes } from "./identity-reviews";
import { registerIdentitySettingsRoutes } from "./identity-settings";
import { registerProfileSplitRoute } from "./profile-split";
import { registerProfileRoutes } from "./profiles";
import { registerSourceRoutes } from "./sources";
import { registerTokenRoutes } from "./tokens";
import { registerWorkspaceRoutes } from "./workspaces";

export function registerAdminRoutes(app: App) {
  registerWorkspaceRoutes(app);
  registerSourceRoutes(app);
  registerTokenRoutes(app);
  registerIdentitySettingsRoutes(app);
  registerIdentityReviewRoutes(app);
  registerIdentityMergeRoutes(app);
  registerProfileRoutes(app);
  registerProfileSplitRoute(app);
  registerAuditLogRoute(app);
}
