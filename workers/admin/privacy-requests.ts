import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { App, AppEnv } from "../context";
import { PRIVACY_REQUEST_STATUSES, type PrivacyRequestKind, privacyRequests } from "../db/privacy-schema";
import { jobs } from "../db/schema";
import { normalizeIdentifier } from "../identity/extract";
import { privacyFor } from "../identity/sharding/privacy";
import { DEFAULT_IDENTITY_SETTINGS, IDENTIFIER_TYPE_PATTERN } from "../identity/settings";
import { identifierKey } from "../identity/types";
import { enqueueJob } from "../jobs/backfill";
import { generateId } from "../lib/keys";
import { ApiError } from "../lib/problem";
import { destinationsThatReceived } from "../privacy/destination-deletions";
import { identifierKeyHash, maskIdentifier } from "../privacy/identifiers";
import { type DestinationReport, getPrivacyRequest, listPrivacyRequests, type PrivacyRequest, type StoreReport } from "../privacy/requests-store";
import { suppress } from "../privacy/suppression-store";
import { type PrivacyWork, putWork } from "../privacy/work";
import { auditInsert } from "./audit";
import { existingWorkspace, requireScope, targetWorkspace } from "./auth";
import { jobSchema, toJob } from "./jobs";
import { idParam, json, problemResponses, workspaceQuery } from "./schemas";

/**
 * What access (export) and deletion requests share: the subject identifier,
 * the request's public shape, and creating one with its job.
 */

export const subjectSchema = z
  .strictObject({
    type: z
      .string()
      .refine((type) => type === "profile_id" || IDENTIFIER_TYPE_PATTERN.test(type), { message: "an identifier type (user_id, email, phone, anonymous_id, device_id, advertising_id, a custom lowercase type) or profile_id" })
      .openapi({ example: "email" }),
    value: z.string().min(1).max(512).openapi({ example: "pat@acme-shop.com" }),
  })
  .openapi("PrivacySubject", { description: "Any identifier of the person (or their profile id): the request reaches everything of the profile that holds it." });

const createRequestBody = z.strictObject({ workspaceId: workspaceQuery.shape.workspaceId, identifier: subjectSchema });

const storeSchema = z.object({ status: z.enum(["pending", "done", "failed"]), counts: z.record(z.string(), z.number()), detail: z.string().optional(), at: z.string().nullable() });
const destinationSchema = z.object({
  name: z.string(),
  type: z.string(),
  status: z.enum(["pending", "retrying", "finished", "failed", "unsupported"]),
  attempts: z.number().int(),
  lastError: z.string().nullable(),
  completedAt: z.string().nullable(),
});

export const privacyRequestSchema = z
  .object({
    id: z.string().openapi({ example: "del_4f1c2a9e0b7d4c3a8e6f1a2b" }),
    workspaceId: z.string(),
    kind: z.enum(["export", "deletion"]),
    status: z.enum(PRIVACY_REQUEST_STATUSES).openapi({
      description: "Segment's statuses: initialized → running → finished, or partial_success (some destination could not delete), or failed (a step failed on every retry; see error).",
    }),
    subject: z.string().openapi({ description: "The identifier the request named, masked.", example: "email:p***@acme-shop.com" }),
    profileIds: z.array(z.string()),
    jobId: z.string().nullable().openapi({ description: "Progress at /admin/v1/jobs/{jobId}." }),
    stores: z.record(z.string(), storeSchema).openapi({ description: "Per store (r2, identity, d1; an export's document): done or pending, with counts." }),
    destinations: z.record(z.string(), destinationSchema).openapi({ description: "Deletions: per destination id that received the person's data, the deletion call's outcome." }),
    download: z.string().nullable().openapi({ description: "Exports: where the finished document is downloaded." }),
    resultBytes: z.number().int().nullable(),
    error: z.string().nullable(),
    requestedBy: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .openapi("PrivacyRequest");

const iso = (ms: number | null | undefined) => (typeof ms === "number" ? new Date(ms).toISOString() : null);

const toPrivacyRequestView = (request: PrivacyRequest) => ({
  id: request.id,
  workspaceId: request.workspaceId,
  kind: request.kind,
  status: request.status,
  subject: request.subjectHint,
  profileIds: request.profileIds,
  jobId: request.jobId,
  stores: Object.fromEntries(Object.entries(request.stores).map(([name, s]) => [name, { status: s.status, counts: s.counts, ...(s.detail ? { detail: s.detail } : {}), at: iso(s.at) }])),
  destinations: Object.fromEntries(
    Object.entries(request.destinations).map(([id, d]) => [id, { name: d.name, type: d.type, status: d.status, attempts: d.attempts, lastError: d.lastError ?? null, completedAt: iso(d.completedAt) }]),
  ),
  download: request.kind === "export" && request.resultKey ? `/admin/v1/privacy/exports/${request.id}/download` : null,
  resultBytes: request.resultBytes,
  error: request.error,
  requestedBy: request.requestedBy,
  createdAt: iso(request.createdAt)!,
  updatedAt: iso(request.updatedAt)!,
  finishedAt: iso(request.finishedAt),
});

const createdSchema = z.object({ request: privacyRequestSchema, job: jobSchema });

/** The subject as a normalised identifier key (`type:value`); a value that cannot be one is a 400 naming the field. */
function subjectKey(subject: z.infer<typeof subjectSchema>): { type: string; value: string } {
  if (subject.type === "profile_id") return subject;
  const normalized = normalizeIdentifier(subject.type, subject.value, DEFAULT_IDENTITY_SETTINGS);
  if (!normalized.ok) throw new ApiError("VALIDATION_FAILED", `identifier.value is not a usable ${subject.type}: ${normalized.reason}`, { errors: [{ path: "identifier.value", message: normalized.reason }] });
  return normalized.identifier;
}

/**
 * Creates an access or deletion request and queues its job. The workspace's
 * identity graph (the shard holding them) finds the person by the identifier, so the request reaches
 * every profile id and identifier they have. A deletion suppresses all of
 * those identifiers before it answers, so nothing of theirs is collected while
 * it runs; it also proceeds for a person the object does not know (their
 * archived events and the suppression still matter). An export of an unknown
 * person is a 404.
 */
async function createPrivacyRequest(c: Context<AppEnv>, kind: PrivacyRequestKind, body: z.infer<typeof createRequestBody>) {
  const workspaceId = await existingWorkspace(c, body.workspaceId);
  const subject = subjectKey(body.identifier);
  const hint = maskIdentifier(identifierKey(subject));
  // Asked of the graph shard the identifier index places the subject on (identity/sharding/privacy.ts).
  const person = await privacyFor(c.env, workspaceId).person(subject.type, subject.value);
  if (!person && kind === "export") throw new ApiError("NOT_FOUND", `no profile in workspace '${workspaceId}' holds ${hint}`, { errors: [{ path: "identifier", message: "no profile holds it" }] });

  const id = generateId(kind === "export" ? "exp" : "del");
  const identifiers = person?.identifiers.map(({ type, value }) => ({ type, value })) ?? (subject.type === "profile_id" ? [] : [subject]);
  const profileIds = person?.profileIds ?? (subject.type === "profile_id" ? [subject.value] : []);
  const keys = [...new Set(identifiers.map(identifierKey))];
  const now = Date.now();
  const work: PrivacyWork = {
    v: 1,
    workspaceId,
    requestId: id,
    subject,
    profileIds,
    identifiers,
    messageIds: person?.messageIds ?? [],
    person: {
      userId: person ? person.userId : (identifiers.find((i) => i.type === "user_id")?.value ?? null),
      anonymousIds: identifiers.filter((i) => i.type === "anonymous_id").map((i) => i.value),
      emails: identifiers.filter((i) => i.type === "email").map((i) => i.value),
    },
  };
  const pending: StoreReport = { status: "pending", counts: {} };
  const stores: Record<string, StoreReport> = kind === "deletion" ? { r2: pending, identity: pending, d1: pending } : { document: pending };
  const destinations: Record<string, DestinationReport> = {};
  if (kind === "deletion") for (const d of await destinationsThatReceived(c.env.DB, workspaceId, profileIds)) destinations[d.id] = { name: d.name, type: d.type, status: "pending", attempts: 0 };

  await putWork(c.env.ARCHIVE, work);
  const actor = c.get("admin")!.actor;
  if (kind === "deletion") await suppress(c.env.DB, workspaceId, keys, { reason: "deletion", requestId: id, actor });
  const db = c.get("db");
  const jobId = generateId("job");
  const [jobRows] = await db.batch([
    db.insert(jobs).values({ id: jobId, workspaceId, kind: kind === "export" ? "privacy-export" : "privacy-deletion", target: id, status: "queued" }).returning(),
    db.insert(privacyRequests).values({
      id,
      workspaceId,
      kind,
      status: "initialized",
      subjectHint: hint,
      subjectHash: identifierKeyHash(workspaceId, identifierKey(subject)),
      profileIds,
      identifierHashes: keys.map((key) => identifierKeyHash(workspaceId, key)),
      jobId,
      stores,
      destinations,
      requestedBy: actor,
      createdAt: now,
      updatedAt: now,
    }),
    auditInsert(c, {
      workspaceId,
      action: `privacy.${kind}.requested`,
      target: id,
      details: { subject: hint, profiles: profileIds.length, identifiers: keys.length, destinations: Object.keys(destinations).length },
    }),
  ]);
  const job = await enqueueJob(db, c.env.JOBS_QUEUE, jobRows[0]!);
  return { id, job: toJob(job) };
}

/** A request of `kind` as the token may see it: another workspace's is a 404, so a token cannot learn it exists. */
export async function findPrivacyRequest(c: Context<AppEnv>, kind: PrivacyRequestKind, id: string, requested: string | undefined): Promise<PrivacyRequest> {
  const admin = c.get("admin")!;
  const request = await getPrivacyRequest(c.env.DB, id);
  const visible = request && request.kind === kind && (admin.workspaceId === null || admin.workspaceId === request.workspaceId) && (requested === undefined || requested === request.workspaceId);
  if (!visible) throw new ApiError("NOT_FOUND", `${kind === "export" ? "access" : "deletion"} request '${id}' not found`);
  return request;
}

export const listQuery = z.object({
  workspaceId: workspaceQuery.shape.workspaceId,
  limit: z.coerce.number().int().min(1).max(200).default(50),
  next: z
    .string()
    .regex(/^\d+\.[A-Za-z0-9_]+$/, "not a cursor this API returned")
    .optional()
    .openapi({ description: "Cursor: the `next` value of the previous page." }),
});

/** A workspace's requests of one kind, newest first. */
export async function listRequests(c: Context<AppEnv>, kind: PrivacyRequestKind, query: z.infer<typeof listQuery>) {
  const workspaceId = targetWorkspace(c.get("admin")!, query.workspaceId);
  const [at, ...rest] = query.next?.split(".") ?? [];
  const before = query.next ? { createdAt: Number(at), id: rest.join(".") } : undefined;
  const { page, next } = await listPrivacyRequests(c.env.DB, workspaceId, kind, query.limit, before);
  return { data: page.map(toPrivacyRequestView), next };
}

/** The two reads every kind of request has: the workspace's list, and one request with its progress. */
export interface PrivacyRequestRoutes {
  kind: PrivacyRequestKind;
  path: string;
  /** How the API names one request ("Deletion request"), and an example id. */
  noun: string;
  example: string;
  summary: string;
  description: string;
}

/** A kind of privacy request's routes, all behind the `privacy` scope: create (202 with its job), list, and read one. */
export function registerPrivacyRequestRoutes(app: App, { kind, path, noun, example, summary, description }: PrivacyRequestRoutes) {
  app.use(path, requireScope("privacy"));
  app.use(`${path}/*`, requireScope("privacy"));

  app.openapi(
    createRoute({
      method: "post",
      path,
      tags: ["Privacy"],
      summary,
      description,
      request: { body: { required: true, content: { "application/json": { schema: createRequestBody } } } },
      responses: { 202: json(createdSchema, `The ${noun.toLowerCase()} and its job`), ...problemResponses },
    }),
    async (c) => {
      const { id, job } = await createPrivacyRequest(c, kind, c.req.valid("json"));
      return c.json({ request: toPrivacyRequestView(await findPrivacyRequest(c, kind, id, undefined)), job }, 202);
    },
  );

  registerPrivacyRequestReads(app, kind, path, noun, example);
}

function registerPrivacyRequestReads(app: App, kind: PrivacyRequestKind, path: string, noun: string, example: string) {
  app.openapi(
    createRoute({
      method: "get",
      path,
      tags: ["Privacy"],
      summary: `${noun}s, newest first`,
      request: { query: listQuery },
      responses: { 200: json(z.object({ data: z.array(privacyRequestSchema), next: z.string().nullable() }), `${noun}s`), ...problemResponses },
    }),
    async (c) => c.json(await listRequests(c, kind, c.req.valid("query")), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: `${path}/{id}`,
      tags: ["Privacy"],
      summary: `A ${noun.toLowerCase()}: its status and what each store${kind === "deletion" ? " and destination" : ""} did`,
      request: { params: idParam(noun, example), query: workspaceQuery },
      responses: { 200: json(privacyRequestSchema, `The ${noun.toLowerCase()}`), ...problemResponses },
    }),
    async (c) => c.json(toPrivacyRequestView(await findPrivacyRequest(c, kind, c.req.valid("param").id, c.req.valid("query").workspaceId)), 200),
  );
}
