import { createApp } from "./app";
import { consumeDeadLetters } from "./consumers/dead-letters";
import { consumeEvents } from "./consumers/events";
import { consumeJobs } from "./consumers/jobs";
import { assertValidEnv, graphShardCount, InvalidEnvironmentError } from "./env";
import { createLogger, errorFields } from "./lib/logger";
import { ApiError, problemResponse } from "./lib/problem";
import { pushAudienceStatistics } from "./maintenance/audience-statistics";
import { syncAudiences } from "./maintenance/audience-sync";
import { expireTokens } from "./maintenance/expire-tokens";
import { enforceRetention } from "./maintenance/retention";
import { runWarehouseExport } from "./maintenance/warehouse-export";
import { identityProcessor } from "./identity/processor";
import { consumeActivations } from "./consumers/activation";
import { activationProcessor } from "./delivery/processor";
import type { EventProcessor } from "./pipeline/processor";

export { DedupShard } from "../durable-objects/dedup-shard";
export { IdentityGraphShard } from "../durable-objects/identity-graph";
export { IdentifierIndexShard } from "../durable-objects/identifier-index";

const app = createApp();

/** Downstream of the archive, in order. */
const processorsFor = (env: Env): EventProcessor[] => [identityProcessor(env, graphShardCount(env)), activationProcessor(env)];

export default {
  fetch(request, env, ctx) {
    try {
      assertValidEnv(env);
    } catch (error) {
      if (!(error instanceof InvalidEnvironmentError)) throw error;
      createLogger().error("refusing to serve: invalid environment", errorFields(error));
      return problemResponse(new ApiError("INTERNAL", "the deployment is misconfigured; see the Worker's logs"));
    }
    return app.fetch(request, env, ctx);
  },

  async queue(batch, env, _ctx) {
    assertValidEnv(env);
    if (batch.queue.includes("-dlq")) return consumeDeadLetters(batch, env);
    if (batch.queue.startsWith("cdp-events")) return consumeEvents(batch, env, processorsFor(env));
    if (batch.queue.startsWith("cdp-jobs")) return consumeJobs(batch, env);
    if (batch.queue.startsWith("cdp-activations")) return consumeActivations(batch, env);
    createLogger().error("message batch from an unknown queue left for retry", { queue: batch.queue });
    batch.retryAll();
  },

  async scheduled(controller, env, _ctx) {
    assertValidEnv(env);
    const now = new Date(controller.scheduledTime);
    const expired = await expireTokens(env.DB, now);
    const retention = await enforceRetention(env, now);
    const synced = await syncAudiences(env, now);
    const statistics = await pushAudienceStatistics(env, now);
    // Last: the heaviest step, bounded per run, and nothing above waits on it.
    const warehouse = await runWarehouseExport(env, now);
    createLogger({ cron: controller.cron }).info("maintenance done", {
      expiredTokens: expired,
      retentionDeleted: retention.deleted,
      retentionBacklogWorkspaces: retention.backlog,
      retentionFailures: retention.failures,
      audiencesRepaired: synced.put + synced.removed,
      jobsRequeued: synced.requeued,
      statisticsWorkspaces: statistics.workspaces,
      warehouseEventHours: warehouse.eventHours,
      warehouseProfileFiles: warehouse.profileFiles,
      warehouseFailures: warehouse.failures,
    });
  },
} satisfies ExportedHandler<Env>;
