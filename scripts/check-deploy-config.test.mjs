import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { checkDeployConfig } from "./check-deploy-config.mjs";

const toml = readFileSync(new URL("../wrangler.toml", import.meta.url), "utf8");
const strong = "9f2c1e7a4b6d8f0a1c3e5b7d9f1a3c5e";

test("passes staging and production of this repository with a real secret", () => {
  assert.deepEqual(checkDeployConfig({ toml, envName: "staging", adminToken: strong }), []);
  assert.deepEqual(checkDeployConfig({ toml, envName: "production", adminToken: strong }), []);
});

test("refuses a missing, development or short admin token", () => {
  assert.match(checkDeployConfig({ toml, envName: "production", adminToken: undefined })[0], /ADMIN_TOKEN is not set/);
  assert.match(checkDeployConfig({ toml, envName: "production", adminToken: "dev-admin-token" })[0], /development default/);
  assert.match(checkDeployConfig({ toml, envName: "production", adminToken: "short" })[0], /shorter than 12/);
});

test("refuses an unknown environment, a missing ENVIRONMENT, a plain ADMIN_TOKEN var and a development key", () => {
  assert.match(checkDeployConfig({ toml, envName: "qa", adminToken: strong })[0], /no \[env.qa\] section/);
  const bad = `[env.production]\nname = "x"\nvars = { ADMIN_TOKEN = "dev-admin-token", WRITE = "dev-write-key" }\n`;
  const problems = checkDeployConfig({ toml: bad, envName: "production", adminToken: strong });
  assert.ok(problems.some((p) => /lack ENVIRONMENT/.test(p)));
  assert.ok(problems.some((p) => /ADMIN_TOKEN in plain text/.test(p)));
  assert.ok(problems.some((p) => /dev-write-key/.test(p)));
});

test("refuses a wrangler.toml that does not parse", () => {
  assert.match(checkDeployConfig({ toml: "[env.production", envName: "production", adminToken: strong })[0], /not valid TOML/);
});
