import { gunzipSync } from "node:zlib";
import { inject } from "vitest";
import { type LocalServer, type LocalServerOptions, startLocalServer } from "../../scripts/local-server.mjs";

/** A server of this test file's own, from the bundle the global setup built. */
export function startE2eServer(options: Omit<LocalServerOptions, "bundle"> = {}): Promise<LocalServer> {
  return startLocalServer({ ...options, bundle: inject("e2eBundle") });
}

export const basicAuth = (secret: string) => `Basic ${Buffer.from(`${secret}:`).toString("base64")}`;

export type ArchivedEvent = Record<string, unknown> & { messageId: string };

/**
 * Every event archived for a workspace: the gzip NDJSON objects under
 * `events/{workspace}/` (see workers/archive/writer.ts). Objects are immutable
 * per key and etag, so `cache` spares re-reading them while polling.
 */
export async function readArchive(server: LocalServer, workspaceId = "default", cache = new Map<string, ArchivedEvent[]>()): Promise<ArchivedEvent[]> {
  const bucket = await server.mf.getR2Bucket("ARCHIVE");
  const events: ArchivedEvent[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: `events/${workspaceId}/`, ...(cursor ? { cursor } : {}) });
    for (const object of page.objects) {
      const cacheKey = `${object.key}\u0000${object.etag}`;
      let parsed = cache.get(cacheKey);
      if (!parsed) {
        const body = await bucket.get(object.key);
        if (!body) continue; // removed between list and get
        const text = gunzipSync(Buffer.from(await body.arrayBuffer())).toString("utf8");
        parsed = text
          .split("\n")
          .filter((line) => line.length > 0)
          .map((line) => JSON.parse(line) as ArchivedEvent);
        cache.set(cacheKey, parsed);
      }
      events.push(...parsed);
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return events;
}

/**
 * Waits until at least `count` archived events have a messageId starting with
 * `prefix`, then until nothing new has arrived for `settleMs` (longer than the
 * consumer's 1 s batch timeout), so that a late duplicate would be seen too.
 */
export async function waitForArchive(server: LocalServer, prefix: string, count: number, { timeoutMs = 60_000, settleMs = 3_000 } = {}): Promise<ArchivedEvent[]> {
  const deadline = Date.now() + timeoutMs;
  const cache = new Map<string, ArchivedEvent[]>();
  const matching = async () => (await readArchive(server, "default", cache)).filter((e) => e.messageId.startsWith(prefix));
  let events = await matching();
  while (events.length < count) {
    if (Date.now() > deadline) throw new Error(`only ${events.length} of ${count} events with prefix ${prefix} were archived within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    events = await matching();
  }
  for (let stableSince = Date.now(); Date.now() - stableSince < settleMs; ) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const again = await matching();
    if (again.length !== events.length) {
      events = again;
      stableSince = Date.now();
    }
  }
  return events;
}

/** An admin API body, read field by field in the tests. */
export type Json = Record<string, any>;

/**
 * Calls the admin API (`/admin/v1{path}`) with the server's admin token and
 * returns whatever it answers, for the test to judge; a body that is not JSON
 * comes back as `{ unparsed }`.
 */
export async function adminCall(server: LocalServer, method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const response = await fetch(`${server.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  try {
    return { status: response.status, body: text ? (JSON.parse(text) as Json) : {} };
  } catch {
    return { status: response.status, body: { unparsed: text } };
  }
}
