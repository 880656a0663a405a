/**
 * A local server for end-to-end tests and benchmarks: the exact bundle
 * `wrangler deploy` builds, served by Miniflare (the workerd runtime wrangler
 * itself runs locally) with every binding from wrangler.toml — D1, the
 * DedupShard Durable Object, queue producers and consumers, R2, rate limits —
 * its D1 migrated and the `default` workspace seeded.
 *
 *   import { startLocalServer } from "./scripts/local-server.mjs";
 *   const { url, mf, dispose } = await startLocalServer();
 *   await fetch(`${url}/v1/track`, ...);
 *   const archive = await mf.getR2Bucket("ARCHIVE");
 *   await dispose();
 *
 * Needs Node 22 (wrangler and miniflare do); `npx` and npm scripts provide it.
 */
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CONFIG_PATH = path.join(ROOT, "wrangler.toml");
const MIGRATIONS_DIR = path.join(ROOT, "migrations");
const SEED_MODULE = path.join(ROOT, "workers/config/seed.ts");
const MIGRATIONS_TABLE = "d1_migrations"; // wrangler's default, so `wrangler d1 migrations apply` agrees with us
const STATEMENT_BREAKPOINT = "--> statement-breakpoint";

/** The keys the harness seeds, as in the design's "Local defaults". */
export const DEV_KEYS = Object.freeze({ writeKey: "dev-write-key", accessToken: "dev-access-token", adminToken: "dev-admin-token" });

// Miniflare as wrangler depends on it, so the runtime is the one `wrangler dev` uses.
const requireFromRoot = createRequire(path.join(ROOT, "package.json"));
const wranglerPackageJson = requireFromRoot.resolve("wrangler/package.json");
export const WRANGLER_BIN = path.join(path.dirname(wranglerPackageJson), "bin/wrangler.js");
// Loaded on first use: scripts that only run wrangler (scripts/start.mjs) never pay for it.
let miniflareModule;
const loadMiniflare = () => (miniflareModule ??= createRequire(wranglerPackageJson)("miniflare"));

/** Node 22 from the `node` devDependency when present: wrangler refuses older Nodes. */
export const NODE_BIN = existsSync(path.join(ROOT, "node_modules/.bin/node")) ? path.join(ROOT, "node_modules/.bin/node") : process.execPath;

/**
 * Environment for wrangler subprocesses: no telemetry, no interactive prompts,
 * and no fetch of a `request.cf` object from Cloudflare (Miniflare's fixed one is used).
 */
export const WRANGLER_ENV = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true", CLOUDFLARE_CF_FETCH_ENABLED: "false", NO_COLOR: "1", FORCE_COLOR: "0" };

/** Runs wrangler with Node 22; resolves with its output, rejects with it on a non-zero exit. */
export function runWrangler(args, { cwd = ROOT, env = WRANGLER_ENV, stdio = "pipe" } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE_BIN, [WRANGLER_BIN, ...args], { cwd, env, stdio: stdio === "pipe" ? ["ignore", "pipe", "pipe"] : stdio });
    let output = "";
    child.stdout?.on("data", (chunk) => (output += chunk));
    child.stderr?.on("data", (chunk) => (output += chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(output);
      else reject(new Error(`wrangler ${args.join(" ")} exited with ${code}:\n${output}`));
    });
  });
}

let bundlePromise;

/**
 * `wrangler deploy --dry-run --outdir <tmp>`: the bundle a deploy would upload.
 * Built once per process; the directory is removed when the process exits.
 */
export function buildBundle() {
  if (bundlePromise) return bundlePromise;
  bundlePromise = (async () => {
    const outdir = await mkdtemp(path.join(tmpdir(), "edge-cdp-bundle-"));
    process.once("exit", () => rmSync(outdir, { recursive: true, force: true }));
    // `--env=` names the top-level environment explicitly, as a deploy of it would.
    await runWrangler(["deploy", "--dry-run", "--outdir", outdir, "--config", CONFIG_PATH, "--env="]);
    const files = await readdir(outdir, { recursive: true });
    const entry = files.find((file) => file === "index.js") ?? files.find((file) => /^[^/]+\.m?js$/.test(file));
    if (!entry) throw new Error(`wrangler deploy --dry-run wrote no bundle to ${outdir}`);
    // The entry first, then any other module the bundle emitted (wasm, text, data), as Miniflare modules.
    const modules = [entry, ...files.filter((file) => file !== entry)].flatMap((file) => {
      const type = moduleType(file);
      return type ? [{ type, path: path.join(outdir, file) }] : [];
    });
    return { outdir, scriptPath: path.join(outdir, entry), modules };
  })();
  bundlePromise.catch(() => (bundlePromise = undefined)); // a failed build is retried by the next caller
  return bundlePromise;
}

/** Module types by extension, after wrangler's default module rules; anything else (source maps, README) is skipped. */
function moduleType(file) {
  if (/\.m?js$/.test(file)) return "ESModule";
  if (/\.cjs$/.test(file)) return "CommonJS";
  if (/\.wasm$/.test(file)) return "CompiledWasm";
  if (/\.(txt|html|sql)$/.test(file)) return "Text";
  if (/\.bin$/.test(file)) return "Data";
  return undefined;
}

let wranglerApi;
const loadWrangler = async () => (wranglerApi ??= await import(pathToFileURL(requireFromRoot.resolve("wrangler")).href));

/** Worker logs (one JSON line each) go to stderr at or above `logLevel`; the default keeps warnings and errors. */
const LOG_RANKS = { none: 0, error: 1, warn: 2, info: 3, debug: 4 };
function structuredLogHandler(logLevel) {
  const threshold = LOG_RANKS[logLevel] ?? LOG_RANKS.warn;
  return ({ level, message }) => {
    const rank = LOG_RANKS[level === "log" ? "info" : level] ?? LOG_RANKS.info;
    if (rank <= threshold) process.stderr.write(`[edge-cdp ${level}] ${message}\n`);
  };
}

/**
 * Starts the deploy bundle in Miniflare on 127.0.0.1.
 *
 * @param {object} [options]
 * @param {number} [options.port=0] 0 picks a free port.
 * @param {string} [options.persistTo] Like `wrangler dev --persist-to`: state lives in `<persistTo>/v3`,
 *   so `.wrangler/state` shares state with `npm start`. Default: a fresh temp dir, removed by `dispose`.
 * @param {number} [options.rateLimit] Requests per 10 s per source for SOURCE_RATE_LIMITER (wrangler.toml's when omitted).
 * @param {"none"|"error"|"warn"|"info"|"debug"} [options.logLevel="warn"] Worker console output forwarded to stderr.
 * @param {{ writeKey: string, accessToken: string }} [options.keys] The keys to seed; DEV_KEYS' when omitted.
 * @param {Record<string, string>} [options.vars] Extra or overriding plain-text variables, e.g. ACTIVATION_RETRY_BUDGET_SECONDS.
 * @param {number} [options.inspectorPort] Exposes the V8 inspector (Chrome DevTools protocol) there, to profile the Worker and its objects.
 * @param {Awaited<ReturnType<typeof buildBundle>>} [options.bundle] A bundle from `buildBundle()`, possibly built in
 *   another process (it is plain data); built here, once per process, when omitted.
 * @returns {Promise<{ url: string, mf: import("miniflare").Miniflare, dispose: () => Promise<void>, writeKey: string, accessToken: string, adminToken: string, persistRoot: string }>}
 */
export async function startLocalServer({ port = 0, persistTo, rateLimit, logLevel = "warn", keys = DEV_KEYS, vars = {}, bundle, inspectorPort } = {}) {
  const [{ outdir, modules }, wrangler] = await Promise.all([bundle ?? buildBundle(), loadWrangler()]);
  const { Miniflare, Log, LogLevel, convertV4MiniflareOptions } = loadMiniflare();
  const config = wrangler.unstable_readConfig({ config: CONFIG_PATH }, { hideWarnings: true });
  // Bindings only: the bundle is already built, so wrangler's module rules do not apply.
  const { modulesRules: _rules, ...workerOptions } = wrangler.unstable_getMiniflareWorkerOptions(config).workerOptions;

  const ratelimits = structuredClone(workerOptions.ratelimits ?? {});
  if (rateLimit !== undefined) {
    if (!ratelimits.SOURCE_RATE_LIMITER?.simple) throw new Error("wrangler.toml declares no SOURCE_RATE_LIMITER rate limit to override");
    if (!(Number.isInteger(rateLimit) && rateLimit > 0)) throw new Error(`rateLimit must be a positive integer, got ${rateLimit}`);
    ratelimits.SOURCE_RATE_LIMITER.simple.limit = rateLimit;
  }

  const ownsState = persistTo === undefined;
  const stateDir = ownsState ? await mkdtemp(path.join(tmpdir(), "edge-cdp-state-")) : path.resolve(persistTo);
  const persistRoot = path.join(stateDir, "v3");

  let mf;
  const dispose = async () => {
    try {
      await mf?.dispose();
    } finally {
      if (ownsState) await rm(stateDir, { recursive: true, force: true });
    }
  };

  try {
    mf = new Miniflare(
      convertV4MiniflareOptions({
        host: "127.0.0.1",
        port,
        log: new Log(LogLevel.WARN),
        logRequests: false,
        cf: false, // Miniflare's fixed request.cf (Austin, US) instead of fetching one from Cloudflare
        handleStructuredLogs: structuredLogHandler(logLevel),
        resourcePersistencePath: persistRoot,
        ...(inspectorPort ? { inspectorPort } : {}),
        workers: [
          {
            ...workerOptions,
            name: config.name, // Durable Object state is keyed by script name: the same as `wrangler dev`
            rootPath: ROOT,
            modulesRoot: outdir,
            modules,
            ratelimits,
            bindings: { ...workerOptions.bindings, ...vars },
          },
        ],
      }),
    );

    const ready = await mf.ready;
    const db = await mf.getD1Database("DB");
    await applyMigrations(db);
    await seedDefaultWorkspace(db, keys);
    const bindings = workerOptions.bindings ?? {};
    return {
      url: ready.origin,
      mf,
      dispose,
      writeKey: keys.writeKey,
      accessToken: keys.accessToken,
      adminToken: typeof bindings.ADMIN_TOKEN === "string" ? bindings.ADMIN_TOKEN : DEV_KEYS.adminToken,
      persistRoot,
    };
  } catch (error) {
    await dispose().catch(() => {});
    throw error;
  }
}

/** Splits a drizzle-kit migration into statements. */
export function migrationStatements(sql) {
  return sql
    .split(STATEMENT_BREAKPOINT)
    .map((statement) => statement.trim())
    .filter((statement) => statement.length > 0);
}

/**
 * Applies every migration in migrations/ not yet recorded in d1_migrations, in
 * name order, recording each as wrangler does; each migration is one batch (one transaction).
 */
export async function applyMigrations(db) {
  await db.exec(`CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)`);
  const { results } = await db.prepare(`SELECT name FROM ${MIGRATIONS_TABLE}`).all();
  const applied = new Set(results.map((row) => row.name));
  const files = (await readdir(MIGRATIONS_DIR)).filter((file) => file.endsWith(".sql")).sort();
  for (const file of files) {
    if (applied.has(file)) continue;
    const statements = migrationStatements(await readFile(path.join(MIGRATIONS_DIR, file), "utf8"));
    await db.batch([...statements.map((sql) => db.prepare(sql)), db.prepare(`INSERT INTO ${MIGRATIONS_TABLE} (name) VALUES (?1)`).bind(file)]);
  }
  return files;
}

/**
 * `seedStatements` from workers/config/seed.ts. Node 22 strips its types on
 * import; where it cannot (an older Node), esbuild (a wrangler dependency)
 * transpiles it — the module is self-contained, so no bundling is needed.
 */
export async function loadSeedStatements() {
  try {
    return (await import(pathToFileURL(SEED_MODULE).href)).seedStatements;
  } catch (error) {
    if (error?.code !== "ERR_UNKNOWN_FILE_EXTENSION") throw error;
    const esbuild = createRequire(wranglerPackageJson)("esbuild");
    const { code } = await esbuild.transform(await readFile(SEED_MODULE, "utf8"), { loader: "ts", format: "esm" });
    return (await import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`)).seedStatements;
  }
}

/** Seeds the `default` workspace with the given write key and access token (idempotent). */
export async function seedDefaultWorkspace(db, keys = DEV_KEYS) {
  const seedStatements = await loadSeedStatements();
  const statements = await seedStatements({ writeKey: keys.writeKey, accessToken: keys.accessToken });
  await db.batch(statements.map((sql) => db.prepare(sql)));
}

/**
 * A trivial Worker on the same runtime (and compatibility settings) as the real
 * one: the baseline benchmarks compare request throughput against.
 */
/**
 * The least any intake can do per request with this runtime's local bindings:
 * ask the rate limiter, send the body to a queue, answer. It separates the cost
 * of the emulated bindings from the cost of the CDP's own code.
 */
const BINDINGS_FLOOR_SCRIPT = `export default {
  async fetch(request, env) {
    const body = await request.json();
    const { success } = await env.SOURCE_RATE_LIMITER.limit({ key: "floor" });
    if (!success) return new Response("limited", { status: 429 });
    await env.EVENTS_QUEUE.send(body, { contentType: "json" });
    return new Response('{"success":true}', { headers: { "content-type": "application/json" } });
  },
  async queue(batch) { batch.ackAll(); },
};`;

export async function startTrivialWorker({ port = 0, withBindings = false } = {}) {
  const wrangler = await loadWrangler();
  const { Miniflare, Log, LogLevel, convertV4MiniflareOptions } = loadMiniflare();
  const config = wrangler.unstable_readConfig({ config: CONFIG_PATH }, { hideWarnings: true });
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port,
      log: new Log(LogLevel.WARN),
      logRequests: false,
      cf: false,
      name: "trivial",
      compatibilityDate: config.compatibility_date,
      compatibilityFlags: config.compatibility_flags,
      modules: true,
      script: withBindings ? BINDINGS_FLOOR_SCRIPT : `export default { fetch() { return new Response('{"success":true}', { headers: { "content-type": "application/json" } }); } };`,
      ...(withBindings
        ? {
            queueProducers: { EVENTS_QUEUE: { queueName: "floor-events" } },
            queueConsumers: { "floor-events": { maxBatchSize: 100, maxBatchTimeout: 1 } },
            ratelimits: { SOURCE_RATE_LIMITER: { namespace_id: "1", simple: { limit: 1_000_000_000, period: 10 } } },
          }
        : {}),
    }),
  );
  try {
    const ready = await mf.ready;
    return { url: ready.origin, mf, dispose: () => mf.dispose() };
  } catch (error) {
    await mf.dispose().catch(() => {});
    throw error;
  }
}
