import { createRoute } from "@hono/zod-openapi";
import type { App } from "../context";
import { graphShardCount } from "../env";
import { copySettingsToShards } from "../identity/sharding/graph-shards";
import { identitySettingsSchema } from "../identity/settings";
import { ApiError } from "../lib/problem";
import { auditInsert } from "./audit";
import { requireScope } from "./auth";
import { identityGraphFor } from "./identity-common";
import { json, problemResponses, workspaceQuery } from "./schemas";

/**
 * The settings document, as the identity graph validates it. Every field has a
 * default, so a PUT that leaves a field out sets it back to its default.
 */
const settingsDocument = identitySettingsSchema.openapi("IdentitySettings", {
  description:
    "A workspace's identity settings: identifier types with their priority (1 = highest; distinct) and limit of distinct values per profile (`ever` or within a window of days), " +
    "blocked values and patterns (never identifiers, on top of the built-in placeholders and role emails), email normalisation, the default phone country, " +
    "the cluster cap, how many user ids an identifier may be seen with before it is quarantined, and the probabilistic thresholds.",
});

const SETTINGS_APPLY =
  "New settings apply to identity decisions made after they are saved: existing profiles are not re-evaluated, so a merge made under the old rules stays until it is unmerged, " +
  "and a value blocked now stops linking from now on but is not removed from the profiles that already hold it.";

export function registerIdentitySettingsRoutes(app: App) {
  app.use("/admin/v1/identity/settings", requireScope("admin"));

  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/identity/settings",
      tags: ["Identity"],
      summary: "Read a workspace's identity settings",
      description: `The full settings document in force, defaults included; edit it and PUT it back. ${SETTINGS_APPLY}`,
      request: { query: workspaceQuery },
      responses: { 200: json(settingsDocument, "The settings in force"), ...problemResponses },
    }),
    async (c) => {
      const { graph } = await identityGraphFor(c, c.req.valid("query").workspaceId);
      return c.json(await graph.getSettings(), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/admin/v1/identity/settings",
      tags: ["Identity"],
      summary: "Replace a workspace's identity settings",
      description:
        `The body is the whole settings document; fields left out take their defaults. An invalid document changes nothing and is answered with a 400 problem whose \`errors\` name every invalid field by its path in the document, like \`identifiers.5.priority\`. ${SETTINGS_APPLY} Audit-logged as \`identity.settings.update\`.`,
      request: { query: workspaceQuery, body: { required: true, content: { "application/json": { schema: settingsDocument } } } },
      responses: { 200: json(settingsDocument, "The settings now in force"), ...problemResponses },
    }),
    async (c) => {
      const { workspaceId, graph } = await identityGraphFor(c, c.req.valid("query").workspaceId);
      // Validated here already; the graph validates again, as it is the one that keeps the settings.
      const result = await graph.putSettings(c.req.valid("json"));
      if (!result.ok) throw new ApiError("VALIDATION_FAILED", "the identity settings are invalid", { errors: result.errors });
      // Every shard resolves with the same settings; shard 0 keeps them first, so the router reads what is in force.
      await copySettingsToShards(c.env.IDENTITY, workspaceId, result.settings, graphShardCount(c.env));
      await auditInsert(c, { workspaceId, action: "identity.settings.update", target: workspaceId, details: { settings: result.settings } });
      return c.json(result.settings, 200);
    },
  );
}
