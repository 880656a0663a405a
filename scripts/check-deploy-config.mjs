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
 *   - anything in its section holds a development key (dev-write-key,
 *     dev-access-token, dev-admin-token);
 *   - the ADMIN_TOKEN environment variable (the secret about to be uploaded with
 *     `wrangler secret put ADMIN_TOKEN --env <name>`) is empty, a development
 *     default, shorter than the Worker accepts, or padded with whitespace.
 *
 * The token is never printed.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parse } from "smol-toml";

/** Mirrors DEV_DEFAULTS in workers/env.ts. */
export const DEV_DEFAULTS = ["dev-write-key", "dev-access-token", "dev-admin-token"];
/** Mirrors the minimum length workers/env.ts enforces on ADMIN_TOKEN. */
export const MIN_ADMIN_TOKEN_LENGTH = 12;
const DEPLOYED_ENVIRONMENTS = ["staging", "production"];

/** Every problem with deploying `envName` from this wrangler.toml text with this admin token. */
export function checkDeployConfig({ toml, envName, adminToken }) {
  const problems = [];
  let config;
  try {
    config = parse(toml);
  } catch (error) {
    return [`wrangler.toml is not valid TOML: ${error.message}`];
  }
  const env = config.env?.[envName];
  if (!env) problems.push(`wrangler.toml has no [env.${envName}] section`);
  else {
    const vars = env.vars ?? {};
    const environment = vars.ENVIRONMENT;
    if (environment === undefined) problems.push(`[env.${envName}] vars lack ENVIRONMENT`);
    else if (!DEPLOYED_ENVIRONMENTS.includes(environment)) {
      problems.push(`[env.${envName}] vars set ENVIRONMENT = "${environment}"; a deployed environment must be one of ${DEPLOYED_ENVIRONMENTS.join(", ")}`);
    }
    if ("ADMIN_TOKEN" in vars) problems.push(`[env.${envName}] vars set ADMIN_TOKEN in plain text; remove it and upload it with 'wrangler secret put ADMIN_TOKEN --env ${envName}'`);
    const section = JSON.stringify(env).toLowerCase();
    for (const dev of DEV_DEFAULTS) if (section.includes(dev)) problems.push(`[env.${envName}] holds the development value '${dev}'`);
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
