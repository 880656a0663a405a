import type { App } from "../context";
import { registerAuditLogRoute } from "./audit-log";
import { registerSourceRoutes } from "./sources";
import { registerTokenRoutes } from "./tokens";
import { registerWorkspaceRoutes } from "./workspaces";

export function registerAdminRoutes(app: App) {
  registerWorkspaceRoutes(app);
  registerSourceRoutes(app);
  registerTokenRoutes(app);
  registerAuditLogRoute(app);
}
