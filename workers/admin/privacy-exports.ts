import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../context";
import { ApiError } from "../lib/problem";
import { auditInsert } from "./audit";
import { findPrivacyRequest, registerPrivacyRequestRoutes } from "./privacy-requests";
import { idParam, problemResponses, workspaceQuery } from "./schemas";

const PATH = "/admin/v1/privacy/exports";
const exportId = idParam("Access request", "exp_4f1c2a9e0b7d4c3a8e6f1a2b");

export function registerPrivacyExportRoutes(app: App) {
  registerPrivacyRequestRoutes(app, {
    kind: "export",
    path: PATH,
    noun: "Access request",
    example: "exp_4f1c2a9e0b7d4c3a8e6f1a2b",
    summary: "Export everything known about a person, found by any identifier",
    description:
      "A job gathers the profile, its identifiers and merge history, traits and computed traits, segment memberships, consent state and history, events from the identity object, " +
      "D1 and the R2 archive, account links and the delivery log into one JSON document, downloadable from `download` once the request is `finished`.",
  });

  app.openapi(
    createRoute({
      method: "get",
      path: `${PATH}/{id}/download`,
      tags: ["Privacy"],
      summary: "Download a finished access request's JSON document",
      request: { params: exportId, query: workspaceQuery },
      responses: {
        200: { description: "The document", content: { "application/json": { schema: z.record(z.string(), z.unknown()) } } },
        409: { description: "Not finished yet, or deleted since", content: { "application/problem+json": { schema: problemResponses[400].content["application/problem+json"].schema } } },
        ...problemResponses,
      },
    }),
    async (c) => {
      const request = await findPrivacyRequest(c, "export", c.req.valid("param").id, c.req.valid("query").workspaceId);
      if (request.status !== "finished") throw new ApiError("CONFLICT", `access request '${request.id}' is ${request.status}; download it once it is finished`);
      const object = request.resultKey ? await c.env.ARCHIVE.get(request.resultKey) : null;
      if (!object) throw new ApiError("CONFLICT", request.error ?? `access request '${request.id}' has no document any more`);
      await c.get("db").batch([auditInsert(c, { workspaceId: request.workspaceId, action: "privacy.export.downloaded", target: request.id, details: { subject: request.subjectHint } })]);
      return new Response(object.body, {
        status: 200,
        headers: { "content-type": "application/json", "content-disposition": `attachment; filename="${request.id}.json"`, "content-length": String(object.size) },
      }) as never;
    },
  );
}
