import type { Context } from "hono";
import type { IdentityGraphShard } from "../../durable-objects/identity-graph";
import type { SourceAuth } from "../config/keys-store";
import type { AppEnv } from "../context";
import { graphShardCount } from "../env";
import { resolveNowOnShards } from "../identity/sharding/resolve-now";
import { queuedEventSchema } from "../intake/envelope";
import { errorFields } from "../lib/logger";
import { suppressedEvents } from "../privacy/suppression-store";
import { BOOKMARK_HEADER } from "../profile-api/context";
import type { CdpEvent } from "./normalize";

/** `?sync=true` on a single-message call asks for the resolved profile in the response. */
export const wantsSync = (c: Context<AppEnv>) => c.req.query("sync") === "true";

export interface SyncedProfile {
  id: string;
  traits: Record<string, unknown>;
  segments: string[];
}

/**
 * Synchronous processing for a caller that tracks and then personalizes at
 * once. The event is already durably queued (so this adds nothing to what can
 * be lost); the workspace's identity object then resolves it and writes it
 * through to D1 in this request, and the response carries the profile and the
 * D1 bookmark, so a Profile API read that sends the bookmark sees the write.
 * With several graph shards, the shard holding the person does both.
 * If this step fails the event is still processed from the queue; the answer
 * is then `profile: null`.
 */
export async function processNow(c: Context<AppEnv>, source: SourceAuth, event: CdpEvent): Promise<SyncedProfile | null> {
  try {
    const queued = queuedEventSchema.parse(event);
    // This path reaches the identity object before the queue consumer's check: a stale edge cache must not re-create a deleted person here.
    const [suppressed] = await suppressedEvents(c.env.DB, source.workspaceId, [queued], "authoritative");
    if (suppressed) return null;
    const sources = { [queued.messageId]: source.sourceId };
    const shards = graphShardCount(c.env);
    // With several graph shards the event goes through the router, and the shard it landed on writes through (identity/sharding/resolve-now.ts).
    const result =
      shards > 1
        ? await resolveNowOnShards(c.env, source.workspaceId, shards, queued, sources)
        : // RPC types erase `unknown`-valued records (traits) to never; the shape is the object's own return type.
          ((await c.env.IDENTITY.getByName(source.workspaceId).resolveNow([queued], { sources })) as unknown as Awaited<ReturnType<IdentityGraphShard["resolveNow"]>>);
    if (result.bookmark) c.header(BOOKMARK_HEADER, result.bookmark);
    if (!result.profile) return null;
    return { id: result.profile.profileId, traits: result.profile.traits, segments: result.profile.segments.map((s) => s.key) };
  } catch (error) {
    c.get("logger").error("synchronous processing failed; the event stays queued", errorFields(error));
    return null;
  }
}
