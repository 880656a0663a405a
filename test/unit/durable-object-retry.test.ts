import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../workers/app";
import { consumeEvents, OVERLOADED_RETRY_DELAY_SECONDS, retryDelaySeconds } from "../../workers/consumers/events";
import type { EventEnvelope } from "../../workers/intake/envelope";
import { backoffDelayMs, callDurableObject, DurableObjectOverloaded, isOverloaded, isRetryable, resilientStub } from "../../workers/lib/durable-object-retry";
import { overloadedAsProblem, problemType } from "../../workers/lib/problem";
import type { EventProcessor } from "../../workers/pipeline/processor";

/** Errors shaped as the runtime throws them from a stub call. */
const retryable = () => Object.assign(new Error("Network connection lost."), { retryable: true });
const overloaded = () => Object.assign(new Error("Durable Object is overloaded. Too many requests queued."), { overloaded: true, retryable: true });

/** Stubs that answer from a script, one entry per call, recording each stub made and each wait. */
function scripted(outcomes: (Error | string)[]) {
  const stubs: { id: number }[] = [];
  const delays: number[] = [];
  let call = 0;
  const makeStub = () => {
    const stub = { id: stubs.length + 1 };
    stubs.push(stub);
    return stub;
  };
  const read = async (_stub: { id: number }) => {
    const outcome = outcomes[call++];
    if (outcome instanceof Error) throw outcome;
    return outcome;
  };
  const sleep = async (ms: number) => void delays.push(ms);
  return { makeStub, read, sleep, stubs, delays, calls: () => call };
}

describe("callDurableObject", () => {
  it("retries a retryable error and returns what the next attempt answers", async () => {
    const s = scripted([retryable(), "profile"]);
    await expect(callDurableObject(s.makeStub, s.read, { object: "IDENTITY:ws", sleep: s.sleep })).resolves.toBe("profile");
    expect(s.calls()).toBe(2);
  });

  it("gives up after the given number of attempts and rethrows the last error as it came", async () => {
    const errors = [retryable(), retryable(), retryable(), retryable()];
    const s = scripted([...errors, "never reached"]);
    await expect(callDurableObject(s.makeStub, s.read, { object: "IDENTITY:ws", attempts: 4, sleep: s.sleep })).rejects.toBe(errors[3]);
    expect(s.calls()).toBe(4);
  });

  it("never retries an overloaded error, even one also marked retryable, and names the object", async () => {
    const cause = overloaded();
    const s = scripted([cause, "never reached"]);
    const error = await callDurableObject(s.makeStub, s.read, { object: "IDENTITY:ws", sleep: s.sleep }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DurableObjectOverloaded);
    expect(error).toMatchObject({ object: "IDENTITY:ws", overloaded: true, cause });
    expect(s.calls()).toBe(1);
    expect(s.delays).toEqual([]);
  });

  it("never retries an error that is not marked retryable, such as one thrown by the object's own code", async () => {
    const remote = Object.assign(new Error("profile not found"), { remote: true });
    const s = scripted([remote, "never reached"]);
    await expect(callDurableObject(s.makeStub, s.read, { object: "IDENTITY:ws", sleep: s.sleep })).rejects.toBe(remote);
    expect(s.calls()).toBe(1);
  });

  it("does not wrap an overload twice when calls are nested", async () => {
    const inner = new DurableObjectOverloaded("DEDUP:ws:3");
    const s = scripted([inner]);
    await expect(callDurableObject(s.makeStub, s.read, { object: "IDENTITY:ws", sleep: s.sleep })).rejects.toBe(inner);
  });

  it("makes a fresh stub for every attempt, since a failed call can leave its stub broken", async () => {
    const s = scripted([retryable(), retryable(), "ok"]);
    await callDurableObject(s.makeStub, s.read, { object: "IDENTITY:ws", sleep: s.sleep });
    expect(s.stubs.map((stub) => stub.id)).toEqual([1, 2, 3]);
  });

  it("waits twice as long after each failure, up to maxDelayMs", async () => {
    const s = scripted([retryable(), retryable(), retryable(), retryable(), retryable(), retryable(), "ok"]);
    const options = { object: "IDENTITY:ws", attempts: 7, baseDelayMs: 50, maxDelayMs: 1000, sleep: s.sleep, random: () => 0.99999 };
    await callDurableObject(s.makeStub, s.read, options);
    expect(s.delays).toEqual([49, 99, 199, 399, 799, 999]);
  });

  it("jitters each wait anywhere from zero up to its ceiling", () => {
    expect(backoffDelayMs(3, { baseDelayMs: 50, random: () => 0 })).toBe(0);
    expect(backoffDelayMs(3, { baseDelayMs: 50, random: () => 0.5 })).toBe(100);
    for (let i = 0; i < 200; i++) expect(backoffDelayMs(10, { baseDelayMs: 50, maxDelayMs: 1000 })).toBeLessThan(1000);
  });
});

describe("reading the error flags", () => {
  it("tolerates anything thrown, and counts only a literal true", () => {
    for (const thrown of [null, undefined, "overloaded", 42, {}, { overloaded: "true", retryable: 1 }]) {
      expect(isOverloaded(thrown)).toBe(false);
      expect(isRetryable(thrown)).toBe(false);
    }
    expect(isRetryable({ retryable: true })).toBe(true);
    expect(isOverloaded({ overloaded: true })).toBe(true);
  });

  it("does not call an overloaded error retryable, whatever else it says", () => {
    expect(isRetryable(overloaded())).toBe(false);
    expect(isOverloaded(new DurableObjectOverloaded("IDENTITY:ws"))).toBe(true);
  });
});

describe("resilientStub", () => {
  function failingObject(error: () => Error) {
    const calls = { read: 0, write: 0 };
    const makeStub = () => ({
      read: async () => {
        calls.read++;
        throw error();
      },
      write: async () => {
        calls.write++;
        throw error();
      },
    });
    return { calls, stub: resilientStub(makeStub, { object: "IDENTITY:ws", idempotent: ["read"], sleep: async () => {} }) };
  }

  it("retries the methods declared idempotent and sends every other one once", async () => {
    const { calls, stub } = failingObject(retryable);
    await expect(stub.read()).rejects.toThrow("Network connection lost.");
    await expect(stub.write()).rejects.toThrow("Network connection lost.");
    expect(calls).toEqual({ read: 3, write: 1 });
  });

  it("names an overload on writes too", async () => {
    const { calls, stub } = failingObject(overloaded);
    await expect(stub.write()).rejects.toBeInstanceOf(DurableObjectOverloaded);
    expect(calls.write).toBe(1);
  });

  it("is not mistaken for a promise when awaited", async () => {
    const { stub } = failingObject(retryable);
    expect(await stub).toBe(stub);
  });
});

describe("an overloaded Durable Object during an HTTP request", () => {
  it("answers 503 with a problem document and Retry-After, through the app's onError", async () => {
    const app = createApp();
    app.get("/__test/overloaded", async (c) => {
      const graph = resilientStub(() => ({ getSettings: async () => Promise.reject(overloaded()) }), {
        object: "IDENTITY:default",
        idempotent: ["getSettings"],
      });
      return c.json(await graph.getSettings());
    });
    const response = await app.request("/__test/overloaded", {}, env);
    expect(response.status).toBe(503);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(response.headers.get("retry-after")).toBe("5");
    const problem = (await response.json()) as Record<string, unknown>;
    expect(problem).toMatchObject({ type: problemType("UNAVAILABLE"), status: 503, code: "UNAVAILABLE" });
    expect(problem.detail).toContain("IDENTITY:default is overloaded");
  });

  it("answers 503 as well when a route called an overloaded object directly", async () => {
    const app = createApp();
    app.get("/__test/overloaded-direct", async () => {
      throw overloaded();
    });
    const response = await app.request("/__test/overloaded-direct", {}, env);
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("5");
    expect(((await response.json()) as { detail: string }).detail).toContain("a Durable Object is overloaded");
  });

  it("leaves every other error to onError as before", () => {
    const plain = new Error("boom");
    expect(overloadedAsProblem(plain)).toBe(plain);
  });
});

describe("the events consumer when a Durable Object fails", () => {
  afterEach(() => vi.restoreAllMocks());

  function envelope(messageId: string): EventEnvelope {
    const at = new Date().toISOString();
    return {
      v: 1,
      workspaceId: "ws-do-retry",
      sourceId: "src_test",
      events: [{ type: "track", event: "Viewed", messageId, userId: "u-1", receivedAt: at, timestamp: at, context: {}, integrations: {} }],
    };
  }

  /** Runs one real message through the consumer; the test batch drops retryAll's options, so they are recorded on the way. */
  async function consumeFailing(error: unknown, attempts: number) {
    const id = crypto.randomUUID();
    const batch = createMessageBatch("cdp-events", [{ id, timestamp: new Date(), attempts, body: envelope(`do-retry-${id}`) }]);
    const retries: (QueueRetryOptions | undefined)[] = [];
    const recording: MessageBatch<unknown> = {
      queue: batch.queue,
      metadata: batch.metadata,
      messages: batch.messages,
      ackAll: () => batch.ackAll(),
      retryAll: (options) => {
        retries.push(options);
        batch.retryAll(options);
      },
    };
    const failing: EventProcessor = {
      name: "identity",
      process: async () => {
        throw error;
      },
    };
    const ctx = createExecutionContext();
    await consumeEvents(recording, env, [failing]);
    const result = await getQueueResult(batch, ctx);
    return { acked: result.ackAll, retried: result.retryBatch.retry, retries };
  }

  it("redelivers the batch after at least the overload delay, and logs which object was overloaded", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const result = await consumeFailing(new DurableObjectOverloaded("IDENTITY:ws-do-retry", overloaded()), 1);
    expect(result).toEqual({ acked: false, retried: true, retries: [{ delaySeconds: OVERLOADED_RETRY_DELAY_SECONDS }] });
    const lines = logged.mock.calls.map(([line]) => JSON.parse(String(line)) as Record<string, unknown>);
    expect(lines).toContainEqual(expect.objectContaining({ level: "error", object: "IDENTITY:ws-do-retry", delaySeconds: 30 }));
  });

  it("keeps its own longer backoff once that exceeds the overload delay", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const result = await consumeFailing(new DurableObjectOverloaded("IDENTITY:ws-do-retry"), 8);
    expect(result.retries).toEqual([{ delaySeconds: retryDelaySeconds(8) }]);
    expect(retryDelaySeconds(8)).toBeGreaterThan(OVERLOADED_RETRY_DELAY_SECONDS);
  });

  it("retries other failures with the usual backoff", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const result = await consumeFailing(new Error("D1 is down"), 1);
    expect(result).toEqual({ acked: false, retried: true, retries: [{ delaySeconds: retryDelaySeconds(1) }] });
  });
});
