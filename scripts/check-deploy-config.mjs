#!/usr/bin/env node
/**
 * Refuses a deploy that would run with development credentials.
 *
 *   ADMIN_TOKEN=… node scripts/check-deploy-config.mjs --env production [--config wrangler.toml]
 *
 * Fails (exit 1) when, for the chosen environment:
 *   - wrangler.toml has no [env.<name>] section;
 *   - its vars lack ENVIRONMENT, or ENVIRONMENT is not "staging" or "production"
 *     (the values for which the Worker itself refuses the development admin token);
 *   - its vars set ADMIN_TOKEN (a plain var; it must be a secret);
 *   - anything in its sections holds a development key (dev-write-key,
 *     dev-access-token, dev-admin-token);
 *   - the ADMIN_TOKEN environment variable (the secret about to be uploaded with
 *     `wrangler secret put ADMIN_TOKEN --env <name>`) is empty, a development
 *     default, shorter than the Worker accepts, or padded with whitespace.
 *
 * No dependencies: it runs before `npm ci` if need be. wrangler.toml is read with
 * a small reader that knows the shapes this repository uses: `vars = { … }`
 * inline tables, dotted `vars.NAME = …` keys and `[env.<name>.vars]` tables.
 * The token is never printed.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

/** Mirrors DEV_DEFAULTS in workers/env.ts. */
export const DEV_DEFAULTS = ["dev-write-key", "dev-access-token", "dev-admin-token"];
/** Mirrors the minimum length workers/env.ts enforces on ADMIN_TOKEN. */
export const MIN_ADMIN_TOKEN_LENGTH = 12;
const DEPLOYED_ENVIRONMENTS = ["staging", "production"];

/** Drops a `#` comment that is not inside a string. */
function stripComment(line) {
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (quote === '"' && ch === "\\") i++;
      else if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "#") return line.slice(0, i);
  }
  return line;
}

/** Splits `text` on `separator` where it is outside strings, braces and brackets. */
function splitTopLevel(text, separator) {
  const parts = [];
  let depth = 0;
  let quote = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (quote === '"' && ch === "\\") i++;
      else if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") depth--;
    else if (ch === separator && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** Braces and brackets still open in `text` (outside strings). */
function openDepth(text) {
  let depth = 0;
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (quote === '"' && ch === "\\") i++;
      else if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") depth--;
  }
  return depth;
}

const unquoteKey = (key) => key.trim().replace(/^"(.*)"$/s, "$1").replace(/^'(.*)'$/s, "$1");

/** A TOML value as a string: the contents of a string, the raw text of anything else. */
function valueText(raw) {
  const value = raw.trim();
  if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) {
    try {
      return JSON.parse(value);
    } catch {
      return value.slice(1, -1);
    }
  }
  if (value.startsWith("'") && value.endsWith("'") && value.length >= 2) return value.slice(1, -1);
  return value;
}

/** `KEY = value` → [key path, value]; the key path is split on dots outside quotes. */
function keyValue(statement) {
  const [key, ...rest] = splitTopLevel(statement, "=");
  if (rest.length === 0) return null;
  return [splitTopLevel(key, ".").map(unquoteKey), rest.join("=").trim()];
}

function parseInlineTable(raw) {
  const body = raw.trim().replace(/^\{/, "").replace(/\}$/, "");
  const entries = {};
  for (const part of splitTopLevel(body, ",")) {
    if (!part.trim()) continue;
    const kv = keyValue(part);
    if (kv) entries[kv[0].join(".")] = valueText(kv[1]);
  }
  return entries;
}

/**
 * The statements of wrangler.toml grouped by the table they belong to. A
 * statement is a `key = value` line, or several lines when an inline table or
 * array spans them.
 */
function tables(toml) {
  const result = [];
  let current = { header: "", statements: [], text: "" };
  result.push(current);
  let pending = "";
  for (const rawLine of toml.split(/\r?\n/)) {
    const line = stripComment(rawLine);
    if (!pending) {
      const header = line.match(/^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*$/);
      if (header) {
        current = { header: splitTopLevel(header[1], ".").map(unquoteKey).join("."), statements: [], text: "" };
        result.push(current);
        continue;
      }
    }
    current.text += `${line}\n`;
    pending += (pending ? "\n" : "") + line;
    if (openDepth(pending) > 0) continue;
    if (pending.trim()) current.statements.push(pending.trim());
    pending = "";
  }
  return result;
}

/** The vars and the raw text of `[env.<name>]` and its sub-tables; `found` is false when there are none. */
export function readEnvironment(toml, name) {
  const prefix = `env.${name}`;
  const vars = {};
  let found = false;
  let text = "";
  for (const table of tables(toml)) {
    if (table.header !== prefix && !table.header.startsWith(`${prefix}.`)) continue;
    found = true;
    text += table.text;
    const sub = table.header.slice(prefix.length).replace(/^\./, "");
    for (const statement of table.statements) {
      const kv = keyValue(statement);
      if (!kv) continue;
      const [path, raw] = kv;
      const full = [...(sub ? sub.split(".") : []), ...path];
      if (full[0] !== "vars") continue;
      if (full.length === 1) Object.assign(vars, raw.startsWith("{") ? parseInlineTable(raw) : {});
      else vars[full.slice(1).join(".")] = valueText(raw);
    }
  }
  return { found, vars, text };
}

/** Every reason not to deploy `envName`; empty when the deploy may go ahead. */
export function checkDeployConfig({ toml, envName, adminToken }) {
  const problems = [];
  const env = readEnvironment(toml, envName);
  if (!env.found) {
    problems.push(`wrangler.toml has no [env.${envName}] section`);
  } else {
    const environment = env.vars.ENVIRONMENT;
    if (environment === undefined) problems.push(`[env.${envName}] vars lack ENVIRONMENT`);
    else if (!DEPLOYED_ENVIRONMENTS.includes(environment)) {
      problems.push(`[env.${envName}] vars set ENVIRONMENT = "${environment}"; a deployed environment must be one of ${DEPLOYED_ENVIRONMENTS.join(", ")}`);
    }
    if ("ADMIN_TOKEN" in env.vars) problems.push(`[env.${envName}] vars set ADMIN_TOKEN in plain text; remove it and upload it with 'wrangler secret put ADMIN_TOKEN --env ${envName}'`);
    for (const [key, value] of Object.entries(env.vars)) {
      const hit = DEV_DEFAULTS.find((dev) => value.toLowerCase().includes(dev));
      if (hit) problems.push(`[env.${envName}] var ${key} holds the development value '${hit}'`);
    }
    const lowered = env.text.toLowerCase();
    for (const dev of DEV_DEFAULTS) {
      const inVars = Object.values(env.vars).some((value) => value.toLowerCase().includes(dev));
      if (!inVars && lowered.includes(dev)) problems.push(`[env.${envName}] holds the development value '${dev}'`);
    }
  }

  if (adminToken === undefined || adminToken === "") {
    problems.push(`ADMIN_TOKEN is not set: give the ${envName} environment an ADMIN_TOKEN secret (at least ${MIN_ADMIN_TOKEN_LENGTH} characters)`);
  } else {
    if (adminToken !== adminToken.trim()) problems.push("ADMIN_TOKEN starts or ends with whitespace");
    if (DEV_DEFAULTS.includes(adminToken.trim().toLowerCase())) problems.push("ADMIN_TOKEN is a development default; set a random secret");
    else if (adminToken.trim().length < MIN_ADMIN_TOKEN_LENGTH) problems.push(`ADMIN_TOKEN is shorter than ${MIN_ADMIN_TOKEN_LENGTH} characters; the Worker would refuse to serve`);
  }
  return problems;
}

function parseArgs(argv) {
  const args = { env: undefined, config: "wrangler.toml" };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i];
    if (flag === "--env" || flag === "-e") args.env = value();
    else if (flag === "--config" || flag === "-c") args.config = value();
    else if (flag === "--help" || flag === "-h") args.help = true;
    else throw new Error(`unknown argument '${arg}'`);
  }
  return args;
}

function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(error.message);
    process.exit(2);
  }
  if (args.help || !args.env) {
    console.error("usage: ADMIN_TOKEN=… node scripts/check-deploy-config.mjs --env <staging|production> [--config wrangler.toml]");
    process.exit(args.help ? 0 : 2);
  }
  let toml;
  try {
    toml = readFileSync(args.config, "utf8");
  } catch (error) {
    console.error(`cannot read ${args.config}: ${error.message}`);
    process.exit(2);
  }
  const problems = checkDeployConfig({ toml, envName: args.env, adminToken: process.env.ADMIN_TOKEN });
  if (problems.length > 0) {
    console.error(`Refusing to deploy '${args.env}':`);
    for (const problem of problems) console.error(`  - ${problem}`);
    process.exit(1);
  }
  console.log(`Deploy configuration for '${args.env}' is fine: ENVIRONMENT is set, no development keys, ADMIN_TOKEN is a real secret.`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
