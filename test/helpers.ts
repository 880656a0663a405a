import { env, exports } from "cloudflare:workers";
import { readArchiveObject } from "../workers/archive/writer";
import { DEV_DEFAULTS } from "../workers/env";

export const BASE = "http://cdp.test";
export const basic = (secret: string) => `Basic ${btoa(`${secret}:`)}`;
export const bearer = (secret: string) => `Bearer ${secret}`;

export function call(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const { json, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (json !== undefined && !headers.has("content-type")) headers.set("content-type", "application/json");
  return exports.default.fetch(new Request(`${BASE}${path}`, { method: json !== undefined ? "POST" : "GET", ...rest, headers, body: json !== undefined ? JSON.stringify(json) : rest.body }));
}

export const track = (path: string, body: unknown, writeKey: string = DEV_DEFAULTS.writeKey) =>
  call(path, { json: body, headers: { authorization: basic(writeKey) } });

export const admin = (path: string, init: RequestInit & { json?: unknown } = {}) =>
  call(path, { ...init, headers: { authorization: bearer(DEV_DEFAULTS.adminToken), ...init.headers } });

/** A fresh source in the default workspace, so a test's traffic and rate limit are its own. */
export async function createSource(name = "test source"): Promise<{ id: string; writeKey: string }> {
  const response = await admin("/admin/v1/sources", { method: "POST", json: { workspaceId: "default", name } });
  if (response.status !== 201) throw new Error(`could not create source: ${response.status} ${await response.text()}`);
  const body = (await response.json()) as { source: { id: string }; writeKey: string };
  return { id: body.source.id, writeKey: body.writeKey };
}

/** Every archived event in a workspace, read back from the real R2 bucket. */
export async function archivedEvents(workspaceId = "default"): Promise<Record<string, unknown>[]> {
  const events: Record<string, unknown>[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.ARCHIVE.list({ prefix: `events/${workspaceId}/`, cursor });
    for (const object of page.objects) events.push(...((await readArchiveObject(env.ARCHIVE, object.key)) ?? []));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return events;
}

/** Waits for the real queue consumer to archive `count` events whose messageId starts with `prefix`. */
export async function waitForArchived(prefix: string, count: number, timeoutMs = 15_000): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const matching = (await archivedEvents()).filter((e) => String(e.messageId).startsWith(prefix));
    if (matching.length >= count || Date.now() > deadline) return matching;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A short random suffix, so a test's ids are its own. */
export const unique = () => crypto.randomUUID().replaceAll("-", "").slice(0, 10);
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export type Json = Record<string, any>;
export const json = async <T = Json>(response: Response) => (await response.json()) as T;
/** A problem document as the API answers errors. */
export interface Problem {
  code: string;
  detail: string;
  errors?: { path: string; message: string }[];
}

/** Polls `check` until it returns a value (not undefined), or fails naming `what` after `timeoutMs`. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
