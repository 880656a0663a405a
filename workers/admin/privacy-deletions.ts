import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../context";
import { requireScope } from "./auth";
import { createdSchema, createPrivacyRequest, createRequestBody, findPrivacyRequest, listQuery, listRequests, privacyRequestSchema, toPrivacyRequestView } from "./privacy-requests";
import { idParam, json, problemResponses, workspaceQuery } from "./schemas";

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

  app.openapi(
    createRoute({
      method: "get",
      path: PATH,
      tags: [TAG],
      summary: "Deletion requests, newest first",
      request: { query: listQuery },
      responses: { 200: json(z.object({ data: z.array(privacyRequestSchema), next: z.string().nullable() }), "Deletion requests"), ...problemResponses },
    }),
    async (c) => c.json(await listRequests(c, "deletion", c.req.valid("query")), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: `${PATH}/{id}`,
      tags: [TAG],
      summary: "A deletion request: its status and what each store and destination did",
      request: { params: idParam("Deletion request", "del_4f1c2a9e0b7d4c3a8e6f1a2b"), query: workspaceQuery },
      responses: { 200: json(privacyRequestSchema, "The deletion request"), ...problemResponses },
    }),
    async (c) => c.json(toPrivacyRequestView(await findPrivacyRequest(c, "deletion", c.req.valid("param").id, c.req.valid("query").workspaceId)), 200),
  );
}
