import { DEV_DEFAULTS } from "../../workers/env";
import { basic, call } from "../helpers";

export const SPACE = "/v1/spaces/default/collections";

/** A Profile API read with the seeded access token. */
export const profileApi = (path: string, headers: Record<string, string> = {}) => call(`${SPACE}/${path}`, { headers: { authorization: basic(DEV_DEFAULTS.accessToken), ...headers } });

/** Polls a Profile API path until `ready` accepts the body: write-through is asynchronous. */
export async function waitForProfile<T = Record<string, unknown>>(path: string, ready: (body: T) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const response = await profileApi(path);
    last = await response.json();
    if (response.status === 200 && ready(last as T)) return last as T;
    if (Date.now() > deadline) throw new Error(`${path} not ready after ${timeoutMs} ms: ${response.status} ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let counter = 0;
/** A unique id per test run, so tests in a file never see each other's people. */
export const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}`;
