// Types for scripts/local-server.mjs, so TypeScript tests and benchmarks can import it.
import type { Miniflare } from "miniflare";

export declare const ROOT: string;
export declare const NODE_BIN: string;
export declare const WRANGLER_BIN: string;
export declare const WRANGLER_ENV: NodeJS.ProcessEnv;
export declare const DEV_KEYS: Readonly<{ writeKey: string; accessToken: string; adminToken: string }>;

/** The output of `wrangler deploy --dry-run --outdir`: plain data, so it can be handed to another process. */
export interface Bundle {
  outdir: string;
  scriptPath: string;
  modules: { type: "ESModule" | "CommonJS" | "CompiledWasm" | "Text" | "Data"; path: string }[];
}

export interface LocalServerOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Like `wrangler dev --persist-to`: state lives in `<persistTo>/v3`. Default: a fresh temp dir, removed by `dispose`. */
  persistTo?: string;
  /** Requests per 10 s per source for SOURCE_RATE_LIMITER; wrangler.toml's limit when omitted. */
  rateLimit?: number;
  /** Worker console output forwarded to stderr; default "warn". */
  logLevel?: "none" | "error" | "warn" | "info" | "debug";
  /** The write key and access token to seed the default workspace with; dev-write-key / dev-access-token when omitted. */
  keys?: { writeKey: string; accessToken: string };
  /** Extra or overriding plain-text variables, e.g. `{ ACTIVATION_RETRY_BUDGET_SECONDS: "5" }`. */
  vars?: Record<string, string>;
  /** A prebuilt bundle from `buildBundle()`; built once per process when omitted. */
  bundle?: Bundle;
}

export interface LocalServer {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  /** The Miniflare instance: `mf.getR2Bucket("ARCHIVE")`, `mf.getD1Database("DB")`, `mf.getDurableObjectNamespace("DEDUP")`… */
  mf: Miniflare;
  /** Stops workerd and, unless `persistTo` was given, deletes the state. */
  dispose(): Promise<void>;
  writeKey: string;
  accessToken: string;
  adminToken: string;
  /** Where the state lives (`<persistTo>/v3`, or the temp dir's). */
  persistRoot: string;
}

export declare function startLocalServer(options?: LocalServerOptions): Promise<LocalServer>;
export declare function startTrivialWorker(options?: { port?: number; withBindings?: boolean }): Promise<{ url: string; mf: Miniflare; dispose(): Promise<void> }>;
export declare function buildBundle(): Promise<Bundle>;
export declare function runWrangler(
  args: string[],
  options?: { cwd?: string; env?: NodeJS.ProcessEnv; stdio?: "pipe" | "inherit" },
): Promise<string>;
export declare function migrationStatements(sql: string): string[];
export declare function applyMigrations(db: Awaited<ReturnType<Miniflare["getD1Database"]>>): Promise<string[]>;
export declare function loadSeedStatements(): Promise<(keys: { writeKey: string; accessToken: string }) => Promise<string[]>>;
export declare function seedDefaultWorkspace(
  db: Awaited<ReturnType<Miniflare["getD1Database"]>>,
  keys?: { writeKey: string; accessToken: string },
): Promise<void>;
