import { createRoute } from "@hono/zod-openapi";
import type { App } from "../context";
import { requireScope } from "./auth";
import { createdSchema, createPrivacyRequest, createRequestBody, findPrivacyRequest, registerPrivacyRequestReads, toPrivacyRequestView } from "./privacy-requests";
import { json, problemResponses } from "./schemas";

const PATH = "/admin/v1/privacy/deletions";
const TAG = "Privacy";

export function registerPrivacyDeletionRoutes(app: App) {
  app.use(PATH, requireScope("privacy"));
  app.use(`${PATH}/*`, requireScope("privacy"));

  app.openapi(
    createRoute({
      method: "post",
      path: PATH,
      tags: [TAG],
      summary: "Delete a person everywhere, found by any identifier",
      description:
        "Suppresses every identifier of the person at intake at once (late, retried or replayed events cannot re-create them), then a job erases them from the identity object, " +
        "every D1 table, the R2 archive (rewriting the objects that hold their events), warehouse files, dead letters and earlier access exports, and sends a deletion " +
        "to every destination the delivery log says received their data, retrying until each answers. Follow it here or at /admin/v1/jobs/{jobId}.",
      request: { body: { required: true, content: { "application/json": { schema: createRequestBody } } } },
      responses: { 202: json(createdSchema, "The deletion request and its job"), ...problemResponses },
    }),
    async (c) => {
      const { id, job } = await createPrivacyRequest(c, "deletion", c.req.valid("json"));
      const request = await findPrivacyRequest(c, "deletion", id, undefined);
      return c.json({ request: toPrivacyRequestView(request), job }, 202);
    },
  );

  registerPrivacyRequestReads(app, "deletion", PATH, "Deletion request", "del_4f1c2a9e0b7d4c3a8e6f1a2b");
}
