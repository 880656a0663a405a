import { rm } from "node:fs/promises";
import type { TestProject } from "vitest/node";
import { buildBundle, type Bundle } from "../../scripts/local-server.mjs";

declare module "vitest" {
  export interface ProvidedContext {
    /** The `wrangler deploy --dry-run` bundle, built once per run; pass it to `startLocalServer({ bundle })`. */
    e2eBundle: Bundle;
  }
}

/**
 * Builds the deploy bundle once for the whole e2e run. Each test file then
 * starts its own server from it (see ./server.ts): test files run in worker
 * processes, and reading R2, D1 or Durable Objects back needs the Miniflare
 * instance in the test's own process. A server per file also keeps one file's
 * traffic, rate limits and archive out of another's assertions.
 */
export default async function setup(project: TestProject) {
  const bundle = await buildBundle();
  project.provide("e2eBundle", bundle);
  return async () => {
    await rm(bundle.outdir, { recursive: true, force: true });
  };
}
