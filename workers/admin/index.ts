import type { App } from "../context";
import { registerComputedTraitRoutes, registerSegmentRoutes } from "./audiences";
import { registerAuditLogRoute } from "./audit-log";
import { registerDeadLetterRoutes } from "./dead-letters";
import { registerDestinationDeliveryRoutes } from "./destination-deliveries";
import { registerDestinationReplayRoute } from "./destination-replay";
import { registerDestinationRoutes } from "./destinations";
import { registerExportRoutes } from "./exports";
import { registerIdentityMergeRoutes } from "./identity-merges";
import { registerIdentityReviewRoutes } from "./identity-reviews";
import { registerIdentitySettingsRoutes } from "./identity-settings";
import { registerJobRoutes } from "./jobs";
import { registerPrivacyCollectionRoute } from "./privacy-collection";
import { registerPrivacySuppressionRoutes } from "./privacy-suppressions";
import { registerPrivacyDeletionRoutes } from "./privacy-deletions";
import { registerPrivacyExportRoutes } from "./privacy-exports";
import { registerPrivacySettingsRoutes } from "./privacy-settings";
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
  // Deliveries after destinations: they sit behind the scope check registered on /admin/v1/destinations/*.
  registerDestinationRoutes(app);
  registerDestinationReplayRoute(app);
  registerDestinationDeliveryRoutes(app);
  registerDeadLetterRoutes(app);
  registerPrivacyExportRoutes(app);
  registerPrivacyDeletionRoutes(app);
  registerPrivacySettingsRoutes(app);
  registerAuditLogRoute(app);
  registerPrivacySuppressionRoutes(app);
  registerPrivacyCollectionRoute(app);
}
