import type { App } from "../context";
import { registerComputedTraitRoutes, registerSegmentRoutes } from "./audiences";
import { registerAuditLogRoute } from "./audit-log";
import { registerExportRoutes } from "./exports";
import { registerIdentityMergeRoutes } from "./identity-merges";
import { registerIdentityReviewRoutes } from "./identity-reviews";
import { registerIdentitySettingsRoutes } from "./identity-settings";
import { registerJobRoutes } from "./jobs";
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
  registerSegmentRoutes(app);
  registerComputedTraitRoutes(app);
  registerJobRoutes(app);
  registerExportRoutes(app);
  registerAuditLogRoute(app);
}
