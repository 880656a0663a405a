/**
 * Calls to Durable Objects, handled as Cloudflare documents their errors
 * (durable-objects/best-practices/error-handling and /automatic-retries):
 *
 * - `.retryable === true`: transient (the object restarted or moved, the
 *   connection dropped). Safe to send again only when the call is idempotent,
 *   and only through a new stub: an error can leave the old stub broken.
 * - `.overloaded === true`: the object cannot keep up. Never retried here:
 *   every extra attempt is load on the object that is already failing. The
 *   caller gets a `DurableObjectOverloaded` naming the object, and decides how
 *   long to stay away (a queue redelivery later, a 503 with Retry-After).
 * - `.remote === true`: thrown by the object's own code; not retried unless
 *   also marked retryable, since the same code would most likely throw again.
 *
 * The runtime already retries, with the same request identity, calls that
 * never reached the object. Ours cover what it leaves to us: calls that may
 * have reached it, which is why only idempotent calls come through here with
 * more than one attempt.
 */

export interface RetryOptions {
  /** Total attempts, the first included. 1 means no retry (but overloads are still named). */
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Injected by tests to record delays instead of waiting them out. */
  sleep?: (ms: number) => Promise<void>;
  /** Injected by tests to pin the jitter; `Math.random` otherwise. */
  random?: () => number;
}

export interface CallOptions extends RetryOptions {
  /** Which object is called, as `BINDING:name` (`IDENTITY:default`): logs and errors name it. */
  object: string;
}

/** An overloaded object, named. Carries `overloaded` itself so that no outer retry loop retries it either. */
export class DurableObjectOverloaded extends Error {
  override readonly name = "DurableObjectOverloaded";
  readonly overloaded = true;
  readonly retryable = false;

  constructor(
    readonly object: string,
    cause?: unknown,
  ) {
    super(`Durable Object ${object} is overloaded`, { cause });
  }
}

const flag = (error: unknown, property: "retryable" | "overloaded" | "remote") =>
  typeof error === "object" && error !== null && (error as Record<string, unknown>)[property] === true;

/** Anything can be thrown (strings, null, plain objects); only a literal `true` counts. */
export const isOverloaded = (error: unknown): boolean => flag(error, "overloaded");

/** Retryable and not overloaded: an overloaded error may carry both flags, and overload wins. */
export const isRetryable = (error: unknown): boolean => flag(error, "retryable") && !isOverloaded(error);

export const isRemote = (error: unknown): boolean => flag(error, "remote");

/**
 * The wait before retry number `retry` (1 for the first retry): "full jitter",
 * uniform between 0 and an exponential ceiling. Spreading retries from many
 * callers of one object keeps them from arriving together.
 */
export function backoffDelayMs(retry: number, { baseDelayMs = 50, maxDelayMs = 1000, random = Math.random }: RetryOptions = {}): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls `call` on a stub from `makeStub`, a new stub for each attempt.
 * Retries retryable errors up to `attempts` in all; an overload becomes a
 * `DurableObjectOverloaded` at once; anything else is rethrown as it is.
 */
export async function callDurableObject<S, R>(makeStub: () => S, call: (stub: S) => R | Promise<R>, options: CallOptions): Promise<R> {
  const attempts = Math.max(1, options.attempts ?? 3);
  const sleep = options.sleep ?? realSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(makeStub());
    } catch (error) {
      if (error instanceof DurableObjectOverloaded) throw error;
      if (isOverloaded(error)) throw new DurableObjectOverloaded(options.object, error);
      if (!isRetryable(error) || attempt >= attempts) throw error;
      await sleep(backoffDelayMs(attempt, options));
    }
  }
}

export interface StubOptions<S> extends CallOptions {
  /**
   * Methods that may run twice without harm: only these are retried. A list
   * of what is safe rather than of what is not, so that a method added later
   * is sent once until someone decides otherwise.
   */
  idempotent: readonly (keyof S & string)[];
}

/**
 * A stand-in for a stub whose method calls go through `callDurableObject`:
 * the methods listed in `idempotent` with retries, every other one once, and
 * an overload named on both. Each call gets its own stub. Only method calls
 * are supported (no `id`, no promise pipelining), which is all the callers do.
 */
export function resilientStub<S extends object>(makeStub: () => S, options: StubOptions<S>): S {
  const idempotent = new Set<string>(options.idempotent);
  return new Proxy({} as S, {
    get(_target, property) {
      // Not a method: `then` must stay undefined, or awaiting the stand-in would call the object.
      if (typeof property !== "string" || property === "then") return undefined;
      return async (...args: unknown[]) => {
        const call = (stub: S) => (stub as Record<string, (...a: unknown[]) => unknown>)[property]!(...args);
        return callDurableObject(makeStub, call, { ...options, attempts: idempotent.has(property) ? options.attempts : 1 });
      };
    },
  });
}
