import type { App } from "../context";
import { registerPrivacyRequestRoutes } from "./privacy-requests";

export function registerPrivacyDeletionRoutes(app: App) {
  registerPrivacyRequestRoutes(app, {
    kind: "deletion",
    path: "/admin/v1/privacy/deletions",
    noun: "Deletion request",
    example: "del_4f1c2a9e0b7d4c3a8e6f1a2b",
    summary: "Delete a person everywhere, found by any identifier",
    description:
      "Suppresses every identifier of the person at intake at once (late, retried or replayed events cannot re-create them), then a job erases them from the identity object, " +
      "every D1 table, the R2 archive (rewriting the objects that hold their events), warehouse files, dead letters and earlier access exports, and sends a deletion " +
      "to every destination the delivery log says received their data, retrying until each answers. Follow it here or at /admin/v1/jobs/{jobId}.",
  });
}
