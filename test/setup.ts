import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { seedStatements } from "../workers/config/seed";
import { DEV_DEFAULTS } from "../workers/env";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
const statements = await seedStatements({ writeKey: DEV_DEFAULTS.writeKey, accessToken: DEV_DEFAULTS.accessToken });
await env.DB.batch(statements.map((sql) => env.DB.prepare(sql)));
