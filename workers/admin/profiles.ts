import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../context";
import { normalizeIdentifier } from "../identity/extract";
import { identifierKey } from "../identity/types";
import { ApiError } from "../lib/problem";
import { requireScope } from "./auth";
import { searchByTraitPrefix } from "./profile-search";
import { identifierSchema, identityGraphFor, identityReadsFor, isoTime, mergeSchema, profileIdParam, toIdentifier, toMerge } from "./identity-common";
import { json, problemResponses, workspaceQuery } from "./schemas";

const searchQuery = workspaceQuery.extend({
  trait: z.string().min(1).max(200).optional().openapi({ example: "last_name", description: "With `prefix`: find profiles whose trait starts with the prefix (read from D1, so eventually consistent)." }),
  prefix: z.string().min(1).max(200).optional().openapi({ example: "Smi", description: "Case-sensitive, except `email`." }),
  limit: z.coerce.number().int().min(1).max(200).default(50).openapi({ description: "Profiles per page of a listing or a trait search (1 to 200, default 50)." }),
  cursor: z.string().optional().openapi({ description: "The `next` of the previous page of a listing or a trait search." }),
  identifier: z.string().optional().openapi({
    example: "email:pat@acme-shop.com",
    description:
      "`type:value`, split at the first colon. The value is normalised as stored (emails lowercased, phones to E.164 with the workspace's default country, the workspace's email rules), so `email:Pat@Acme-Shop.com` finds `pat@acme-shop.com`.",
  }),
});

const profileSummarySchema = z
  .object({
    profileId: z.string().openapi({ example: "prof_00000a" }),
    identifiers: z.array(identifierSchema),
    traits: z.record(z.string(), z.unknown()).optional().openapi({ description: "The profile's traits (trait searches only)." }),
  })
  .openapi("ProfileSummary");

const graphSchema = z
  .object({
    requestedId: z.string().openapi({ description: "The id asked for." }),
    profileId: z.string().openapi({ description: "The live profile: differs from `requestedId` when that profile was absorbed by a merge." }),
    forwarded: z.boolean().openapi({ description: "True when `requestedId` was absorbed and resolved to `profileId`." }),
    identifiers: z.array(identifierSchema),
    links: z
      .array(z.object({ messageId: z.string(), identifiers: z.array(z.string()), at: z.string().nullable() }))
      .openapi({ description: "The events (or approved reviews, `review:{id}`) whose identifiers link this profile together: the edges an unmerge recomputes the profile from." }),
    merges: z.array(mergeSchema).openapi({ description: "Merges this profile took part in as survivor, absorbed or restored part, retracted ones included." }),
    conflicts: z
      .array(
        z.object({
          messageId: z.string(),
          identifier: z.string().openapi({ description: "The identifier dropped from the event." }),
          reason: z.enum(["limit", "user-id-conflict", "never-merge", "cluster-cap", "quarantined"]),
          profiles: z.array(z.string()).openapi({ description: "The profiles the event would have joined." }),
          at: z.string().nullable(),
        }),
      )
      .openapi({ description: "Guard decisions recorded against this profile: identifiers dropped from events, and why." }),
    consent: z
      .record(
        z.string(),
        z.object({
          consented: z.boolean(),
          updatedAt: z.string().nullable().openapi({ description: "The timestamp of the consent event that set it." }),
          messageId: z.string().openapi({ description: "The consent event that set it (the later side's, for a conflict)." }),
          conflict: z.boolean().openapi({ description: "True when a merge joined profiles that stated different values: not consented until the person states it again." }),
        }),
      )
      .openapi({
        description: "Consent per category, from the person's `Segment Consent Preference Updated` events (latest per category wins). Categories never stated are absent.",
        example: { analytics: { consented: true, updatedAt: "2026-11-01T12:00:00.000Z", messageId: "msg-1", conflict: false } },
      }),
  })
  .openapi("ProfileGraph");

function parseIdentifier(raw: string) {
  const colon = raw.indexOf(":");
  const type = raw.slice(0, Math.max(colon, 0)).trim().toLowerCase();
  const value = colon < 0 ? "" : raw.slice(colon + 1);
  if (colon < 0 || type === "" || value.trim() === "") {
    throw new ApiError("VALIDATION_FAILED", "identifier must be `type:value`, like `email:pat@acme-shop.com`", { errors: [{ path: "identifier", message: "must be type:value" }] });
  }
  return { type, value };
}

export function registerProfileRoutes(app: App) {
  app.use("/admin/v1/profiles", requireScope("admin"));
  app.use("/admin/v1/profiles/*", requireScope("admin"));

  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/profiles",
      tags: ["Profiles"],
      summary: "List profiles, or find them by identifier or by trait prefix",
      description:
        "Without a search: every live profile with its identifiers, read from the identity graph, in creation order, paged with `limit` and `cursor`. " +
        "`identifier=type:value` returns the live profile holding it, read from the identity graph (a lookup by any identifier of a merged profile returns the merged profile). " +
        "`trait=name&prefix=…` returns live profiles whose trait starts with the prefix, in profile id order, paged with `limit` and `cursor`. No match is `{ \"data\": [] }`. " +
        "At most one of the two searches per request; an identifier that cannot be parsed or normalised is a 400 naming `identifier`.",
      request: { query: searchQuery },
      responses: { 200: json(z.object({ data: z.array(profileSummarySchema), next: z.string().nullable().optional() }), "The matching profiles"), ...problemResponses },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const { workspaceId, graph } = await identityGraphFor(c, query.workspaceId);
      if ((query.identifier !== undefined && query.trait !== undefined) || (query.trait === undefined) !== (query.prefix === undefined)) {
        throw new ApiError("VALIDATION_FAILED", "search by `identifier`, or by `trait` and `prefix`: at most one of the two", {
          errors: [{ path: query.trait === undefined ? "prefix" : query.identifier === undefined ? "prefix" : "identifier", message: "give identifier, or trait with prefix, or neither to list" }],
        });
      }
      if (query.identifier === undefined && query.trait === undefined) {
        const page = await identityReadsFor(c, workspaceId).listProfiles(query.cursor ?? null, query.limit);
        return c.json({ data: page.profiles.map((p) => ({ profileId: p.profileId, identifiers: p.identifiers.map(toIdentifier) })), next: page.next }, 200);
      }
      if (query.trait !== undefined) {
        const { hits, more } = await searchByTraitPrefix(c.env.DB, workspaceId, query.trait, query.prefix!, query.cursor, query.limit);
        const data = hits.map((hit) => ({ profileId: hit.profileId, traits: hit.traits, identifiers: hit.identifiers.map((i) => ({ type: i.type, value: i.value, firstSeen: isoTime(i.firstSeen), lastSeen: isoTime(i.lastSeen) })) }));
        return c.json({ data, next: more ? (hits.at(-1)?.profileId ?? null) : null }, 200);
      }
      const { type, value } = parseIdentifier(query.identifier!);
      const normalized = normalizeIdentifier(type, value, await graph.getSettings());
      if (!normalized.ok) throw new ApiError("VALIDATION_FAILED", `identifier: ${normalized.reason}`, { errors: [{ path: "identifier", message: normalized.reason }] });
      const profile = await identityReadsFor(c, workspaceId).lookup(identifierKey(normalized.identifier));
      return c.json({ data: profile ? [{ profileId: profile.profileId, identifiers: profile.identifiers.map(toIdentifier) }] : [] }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/admin/v1/profiles/{profileId}/graph",
      tags: ["Profiles"],
      summary: "A profile's identity graph",
      description:
        "Its identifiers with first and last seen, the links (events) that hold them together, the merges it took part in with their evidence and retractions, the conflicts recorded against it, and its consent per category. " +
        "An absorbed profile's id resolves to the profile that absorbed it: the response then has `forwarded: true` and both ids.",
      request: { params: profileIdParam, query: workspaceQuery },
      responses: { 200: json(graphSchema, "The profile's graph"), ...problemResponses },
    }),
    async (c) => {
      const { profileId } = c.req.valid("param");
      const { workspaceId } = await identityGraphFor(c, c.req.valid("query").workspaceId);
      const view = await identityReadsFor(c, workspaceId).profile(profileId);
      if (!view) throw new ApiError("NOT_FOUND", `profile '${profileId}' not found`);
      return c.json(
        {
          requestedId: view.requestedId,
          profileId: view.profileId,
          forwarded: view.requestedId !== view.profileId,
          identifiers: view.identifiers.map(toIdentifier),
          links: view.links.map((link) => ({ messageId: link.messageId, identifiers: link.keys, at: isoTime(link.at) })),
          merges: view.merges.map(toMerge),
          conflicts: view.conflicts.map((conflict) => ({ messageId: conflict.messageId, identifier: conflict.dropped, reason: conflict.reason, profiles: conflict.clusters, at: isoTime(conflict.at) })),
          consent: Object.fromEntries(
            Object.entries(view.consent).map(([category, entry]) => [category, { consented: entry.consented, updatedAt: isoTime(entry.at), messageId: entry.messageId, conflict: entry.conflict === true }]),
          ),
        },
        200,
      );
    },
  );
}
