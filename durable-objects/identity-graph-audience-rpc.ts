import type { FieldError } from "../workers/lib/problem";
import type { Audience } from "../workers/segments/catalog";
import { type AudienceSyncPage, applyStatistics, backfillChunk, previewDefinition, putDefinition, syncPage } from "./audience-operations";
import { IdentityGraphHandoverRpc } from "./identity-graph-handover-rpc";
import { workspaceOf } from "./profile-writer";

/**
 * The identity graph object's RPCs for segments and computed traits over the
 * people it holds: definitions, backfills, previews, members, a destination's
 * initial sync and workspace statistics (bodies in audience-operations.ts and
 * audience-engine.ts). Part of `IdentityGraphShard` (identity-graph.ts), which
 * extends it.
 */
export abstract class IdentityGraphAudienceRpc extends IdentityGraphHandoverRpc {
  /** Adds or replaces a segment or computed trait; a backfill (`backfillAudiences`) brings existing profiles up to date. */
  putAudience(input: unknown): { ok: true; audience: Audience; profiles: number } | { ok: false; errors: FieldError[] } {
    return putDefinition(this.audienceParts(), input);
  }

  removeAudience(audienceId: string): boolean {
    const existed = this.audiences.audiences().some((a) => a.id === audienceId);
    for (const profileId of this.audiences.remove(audienceId)) this.store.markDirty("audiences", profileId);
    this.writer.schedule();
    return existed;
  }

  listAudiences(): Audience[] {
    return this.audiences.audiences();
  }

  backfillAudiences(after: string | null, limit: number) {
    const result = backfillChunk(this.audienceParts(), after, limit, Date.now());
    this.writer.schedule();
    return result;
  }

  /**
   * A backfill chunk that stops at `through` (included): at most `limit` live
   * profiles in (`after`, `through`]; `next` is set while more of them may be
   * left. A backfill over several graph shards cuts each chunk at one profile
   * id for all of them (workers/identity/sharding/audience-backfill.ts).
   */
  backfillAudiencesThrough(after: string | null, through: string, limit: number) {
    const result = backfillChunk(this.audienceParts(), after, limit, Date.now(), through);
    this.writer.schedule();
    return result;
  }

  previewAudience(input: unknown, sampleSize: number) {
    return previewDefinition(this.audienceParts(), input, sampleSize, Date.now());
  }

  audienceMembers(audienceId: string, after: string | null, limit: number) {
    return this.audiences.members(audienceId, after, limit);
  }

  /** An audience's members as the activation envelopes of their entry, for a destination's initial sync (see `syncPage`). */
  audienceSyncPage(audienceId: string, after: string | null, limit: number): AudienceSyncPage | null {
    return syncPage(this.audienceParts(), workspaceOf(this.ctx.id.name), audienceId, after, limit);
  }

  /** New workspace statistics: every profile is evaluated again against them. */
  putStatistics(statistics: Record<string, number>) {
    const changed = applyStatistics(this.audienceParts(), statistics, Date.now());
    this.writer.schedule();
    return changed;
  }

  private audienceParts() {
    return { graph: this.load(), store: this.store, engine: this.audiences };
  }
}
