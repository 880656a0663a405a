/**
 * `npm start`: everything on http://127.0.0.1:8787 (PORT overrides) with local
 * persistence under .wrangler/state, as the design's "Local defaults" promise.
 *
 * 1. applies the D1 migrations to the local database (`wrangler d1 migrations apply DB --local`),
 * 2. seeds the `default` workspace with the development keys (DEV_WRITE_KEY and
 *    DEV_ACCESS_TOKEN from .dev.vars, else dev-write-key / dev-access-token),
 * 3. runs `wrangler dev`, and prints the URL and the keys once it answers.
 *
 * Every step is idempotent, so `npm start` is also how to restart.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { DEV_KEYS, loadSeedStatements, NODE_BIN, ROOT, runWrangler, WRANGLER_BIN, WRANGLER_ENV } from "./local-server.mjs";

/** KEY=value lines as dotenv reads them: comments, blank lines, optional `export`, single or double quotes. */
function readDevVars(file) {
  if (!existsSync(file)) return {};
  const vars = {};
  for (const line of readFileSync(file, "utf8").split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([\w.-]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match || line.trimStart().startsWith("#")) continue;
    let value = match[2];
    const quoted = /^(["'`])([\s\S]*)\1$/.exec(value);
    if (quoted) value = quoted[1] === '"' ? quoted[2].replace(/\\n/g, "\n") : quoted[2];
    else value = value.replace(/\s+#.*$/, "");
    vars[match[1]] = value;
  }
  return vars;
}

async function main() {
  const port = process.env.PORT || "8787";
  if (!/^\d+$/.test(port) || Number(port) > 65535) throw new Error(`PORT must be a port number, got '${port}'`);
  const devVars = readDevVars(path.join(ROOT, ".dev.vars"));
  const keys = {
    writeKey: devVars.DEV_WRITE_KEY || DEV_KEYS.writeKey,
    accessToken: devVars.DEV_ACCESS_TOKEN || DEV_KEYS.accessToken,
    adminToken: devVars.ADMIN_TOKEN || DEV_KEYS.adminToken,
  };

  step("applying D1 migrations to the local database");
  await runWrangler(["d1", "migrations", "apply", "DB", "--local"], { stdio: "inherit" });

  step("seeding the default workspace");
  const statements = await (await loadSeedStatements())({ writeKey: keys.writeKey, accessToken: keys.accessToken });
  const seedDir = await mkdtemp(path.join(tmpdir(), "edge-cdp-seed-"));
  try {
    const seedFile = path.join(seedDir, "seed.sql");
    await writeFile(seedFile, statements.map((sql) => `${sql};`).join("\n") + "\n");
    await runWrangler(["d1", "execute", "DB", "--local", "--file", seedFile]);
  } finally {
    await rm(seedDir, { recursive: true, force: true });
  }

  step("starting wrangler dev");
  const url = `http://127.0.0.1:${port}`;
  // CI=true is only for the prompts above: `wrangler dev` keeps its interactive hotkeys in a terminal.
  const { CI: _ci, ...devEnv } = WRANGLER_ENV;
  const dev = spawn(NODE_BIN, [WRANGLER_BIN, "dev", "--ip", "127.0.0.1", "--port", port], { cwd: ROOT, env: devEnv, stdio: "inherit" });

  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      if (dev.exitCode === null && dev.signalCode === null) dev.kill(signal);
    });
  }
  const exited = new Promise((resolve) => dev.on("exit", (code, signal) => resolve({ code, signal })));

  const ready = await Promise.race([waitUntilServing(`${url}/openapi.json`), exited.then(() => false)]);
  if (ready) {
    console.log(
      [
        "",
        `  Edge CDP is running at ${url}`,
        `    write key     ${keys.writeKey}`,
        `    access token  ${keys.accessToken}`,
        `    admin token   ${keys.adminToken}`,
        `    OpenAPI       ${url}/openapi.json`,
        `  Try: curl -u ${keys.writeKey}: -d '{"userId":"u1","event":"Hi"}' ${url}/v1/track`,
        "",
      ].join("\n"),
    );
  }
  const { code, signal } = await exited;
  process.exitCode = code ?? (signal ? 0 : 1);
}

function step(message) {
  console.log(`\n▶ ${message}`);
}

/** Resolves true once `url` answers 200; keeps trying while wrangler builds and starts. */
async function waitUntilServing(url, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  console.error(`\n  ${url} did not answer within ${timeoutMs / 1000} s; see wrangler's output above.`);
  return false;
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
