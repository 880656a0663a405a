import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * Bundles a TypeScript entry (source text, resolved from the repository root)
 * into one ES module for Node with esbuild, imports it and removes the bundle:
 * how the benchmarks run the Worker's own domain code in a plain Node process.
 */
export async function importTypeScript(contents, name) {
  const { build } = await import("esbuild");
  const dir = await mkdtemp(path.join(tmpdir(), `edge-cdp-${name}-`));
  try {
    const outfile = path.join(dir, `${name}.mjs`);
    await build({
      stdin: { contents, resolveDir: ROOT, sourcefile: `${name}-entry.ts`, loader: "ts" },
      bundle: true,
      format: "esm",
      platform: "node",
      target: "node22",
      outfile,
      logLevel: "warning",
    });
    return await import(pathToFileURL(outfile).href);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
