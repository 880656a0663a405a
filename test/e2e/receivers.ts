import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Webhook receivers for end-to-end tests of activation: real HTTP servers on
 * 127.0.0.1 (node:http) that record every request as it arrived — raw body,
 * headers, arrival time, what they answered and when, or that the sender gave
 * up first — and answer as their behaviour says: at once, late, with an error
 * status, or never.
 */

export interface ReceivedRequest {
  /** 0-based, in arrival order. */
  index: number;
  /** Date.now() when the request's headers arrived. */
  arrivedAt: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The body exactly as received, before any parsing: what the signature covers. */
  rawBody: string;
  /** The parsed `{ batch, sentAt }`, when the body is one. */
  payload?: { batch: Record<string, unknown>[]; sentAt: string };
  messageIds: string[];
  /** The status answered; absent while unanswered, and for a request the sender abandoned. */
  status?: number;
  answeredAt?: number;
  /** When the sender closed the connection before any answer (a timeout on its side). */
  abandonedAt?: number;
}

/** What to do with a request: answer `status` after `delayMs`, or never answer. */
export type Reply = { status: number; delayMs?: number; headers?: Record<string, string> } | "hang";
export type Behaviour = (request: ReceivedRequest) => Reply;

export const behaviours = {
  healthy: (): Behaviour => () => ({ status: 200 }),
  slow: (delayMs: number): Behaviour => () => ({ status: 200, delayMs }),
  always: (status: number): Behaviour => () => ({ status }),
  /** `status` for the first `n` requests, then 200. */
  failFirst: (n: number, status = 500): Behaviour => (request) => (request.index < n ? { status } : { status: 200 }),
  hang: (): Behaviour => () => "hang",
};

export interface Receiver {
  /** `http://127.0.0.1:<port>/hook`. */
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** Changes how later requests are answered (a request already waiting keeps its reply). */
  setBehaviour(behaviour: Behaviour): void;
  /** messageId → how many times it arrived in a request this receiver answered with a 2xx. */
  accepted(): Map<string, number>;
  /** messageId → how many times it arrived at all, whatever the answer. */
  seen(): Map<string, number>;
  close(): Promise<void>;
}

export async function startReceiver(behaviour: Behaviour, { path = "/hook" } = {}): Promise<Receiver> {
  let current = behaviour;
  const requests: ReceivedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const record: ReceivedRequest = { index: requests.length, arrivedAt: Date.now(), method: req.method ?? "", path: req.url ?? "", headers: req.headers, rawBody: "", messageIds: [] };
    requests.push(record);
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      record.rawBody = Buffer.concat(chunks).toString("utf8");
      try {
        const parsed = JSON.parse(record.rawBody) as { batch?: unknown; sentAt?: unknown };
        if (Array.isArray(parsed.batch) && typeof parsed.sentAt === "string") {
          record.payload = { batch: parsed.batch as Record<string, unknown>[], sentAt: parsed.sentAt };
          record.messageIds = record.payload.batch.map((m) => String(m.messageId));
        }
      } catch {
        // Recorded as it is; the test sees an empty messageIds.
      }
      const reply = current(record);
      if (reply === "hang") return; // never answered; `close` records when the sender gives up
      const send = () => answer(res, record, reply);
      if (reply.delayMs) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          send();
        }, reply.delayMs);
        timers.add(timer);
      } else send();
    });
    res.on("close", () => {
      if (record.status === undefined) record.abandonedAt = Date.now();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const count = (filter: (r: ReceivedRequest) => boolean) => {
    const counts = new Map<string, number>();
    for (const request of requests.filter(filter)) for (const id of request.messageIds) counts.set(id, (counts.get(id) ?? 0) + 1);
    return counts;
  };

  return {
    url: `http://127.0.0.1:${port}${path}`,
    port,
    requests,
    setBehaviour(next) {
      current = next;
    },
    accepted: () => count((r) => r.status !== undefined && r.status >= 200 && r.status < 300),
    seen: () => count(() => true),
    async close() {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function answer(res: ServerResponse, record: ReceivedRequest, reply: Exclude<Reply, "hang">) {
  if (res.destroyed || record.abandonedAt !== undefined) return; // the sender already gave up
  record.status = reply.status;
  record.answeredAt = Date.now();
  res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers });
  res.end(JSON.stringify({ ok: reply.status < 300 }));
}

/** `sha256=<hex>`: the X-Signature a webhook body should carry, computed independently of the server's code. */
export const expectedSignature = (secret: string, rawBody: string) => `sha256=${createHmac("sha256", secret).update(rawBody, "utf8").digest("hex")}`;

/**
 * A receiver's check, as workers/activation/webhook.ts documents it: HMAC-SHA256
 * of the raw bytes compared in constant time, then `sentAt` equal to
 * X-Timestamp and within `toleranceMs` of now. Returns why not, or null.
 */
export function verifyAtReceiver(request: ReceivedRequest, secret: string, { now = request.arrivedAt, toleranceMs = 5 * 60_000 } = {}): string | null {
  const header = request.headers["x-signature"];
  const signature = Array.isArray(header) ? header[0] : header;
  if (!signature || !/^sha256=[0-9a-f]{64}$/.test(signature)) return `missing or malformed X-Signature: ${String(signature)}`;
  const expected = Buffer.from(expectedSignature(secret, request.rawBody));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return "signature does not match";
  if (!request.payload) return "body is not { batch, sentAt }";
  if (request.headers["x-timestamp"] !== request.payload.sentAt) return `X-Timestamp ${String(request.headers["x-timestamp"])} differs from sentAt ${request.payload.sentAt}`;
  const age = Math.abs(now - Date.parse(request.payload.sentAt));
  if (!(age <= toleranceMs)) return `sentAt ${request.payload.sentAt} is ${age} ms from the arrival`;
  return null;
}

/** A port nothing listens on (bound, then released): connections to it are refused. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
