import { z } from "zod";
import { MAX_GRAPH_SHARDS } from "./identity/sharding/graph-shards";

/** The development defaults from the design; any deployed environment must refuse them. */
export const DEV_DEFAULTS = {
  writeKey: "dev-write-key",
  accessToken: "dev-access-token",
  adminToken: "dev-admin-token",
} as const;

const varsSchema = z
  .object({
    ENVIRONMENT: z.enum(["development", "test", "staging", "production"]),
    ADMIN_TOKEN: z.string().min(12, "ADMIN_TOKEN must be at least 12 characters"),
    /** How long a delivery may keep retrying before it is dead-lettered; 4 hours (as Segment) unless set. */
    ACTIVATION_RETRY_BUDGET_SECONDS: z.coerce.number().int().min(1).optional(),
    /** Graph shards per workspace (docs/identity.md, "Sharding"); 1 unless set. */
    IDENTITY_GRAPH_SHARDS: z.coerce.number().int().min(1).max(MAX_GRAPH_SHARDS, `IDENTITY_GRAPH_SHARDS may be at most ${MAX_GRAPH_SHARDS}`).optional(),
  })
  .superRefine((vars, ctx) => {
    const deployed = vars.ENVIRONMENT === "staging" || vars.ENVIRONMENT === "production";
    if (deployed && vars.ADMIN_TOKEN === DEV_DEFAULTS.adminToken) {
      ctx.addIssue({
        code: "custom",
        path: ["ADMIN_TOKEN"],
        message: `the development admin token may not be used in ${vars.ENVIRONMENT}; set a secret with 'wrangler secret put ADMIN_TOKEN'`,
      });
    }
  });

export type Vars = z.infer<typeof varsSchema>;

const REQUIRED_BINDINGS = ["DB", "DEDUP", "IDENTITY", "IDENTIFIER_INDEX", "EVENTS_QUEUE", "ACTIVATION_QUEUE", "JOBS_QUEUE", "ARCHIVE", "SOURCE_RATE_LIMITER"] as const;

export class InvalidEnvironmentError extends Error {}

const validated = new WeakSet<object>();

/**
 * Checked once per isolate per env object at the Worker boundary: a deployment
 * with a missing binding or a development secret fails loudly on its first
 * request instead of misbehaving later.
 */
export function assertValidEnv(env: Env): Env {
  if (validated.has(env)) return env;
  const missing = REQUIRED_BINDINGS.filter((name) => (env as unknown as Record<string, unknown>)[name] == null);
  if (missing.length > 0) throw new InvalidEnvironmentError(`missing bindings: ${missing.join(", ")}`);
  const parsed = varsSchema.safeParse(env);
  if (!parsed.success) {
    throw new InvalidEnvironmentError(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  }
  validated.add(env);
  return env;
}

/** The retry budget for deliveries, in ms, from the optional ACTIVATION_RETRY_BUDGET_SECONDS variable. */
export function retryBudgetMs(env: object): number | undefined {
  const raw = (env as { ACTIVATION_RETRY_BUDGET_SECONDS?: unknown }).ACTIVATION_RETRY_BUDGET_SECONDS;
  const seconds = raw === undefined ? undefined : Number(raw);
  return seconds !== undefined && Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

/** Graph shards per workspace, from the optional IDENTITY_GRAPH_SHARDS variable (checked by `assertValidEnv`). */
export function graphShardCount(env: object): number {
  const raw = (env as { IDENTITY_GRAPH_SHARDS?: unknown }).IDENTITY_GRAPH_SHARDS;
  const count = raw === undefined ? 1 : Number(raw);
  return Number.isInteger(count) && count >= 1 && count <= MAX_GRAPH_SHARDS ? count : 1;
}
