import type { Audience } from "./catalog";

/** A membership or computed value that changed for one profile. `seq` numbers changes per workspace, so each gets its own messageId. */
export interface AudienceChange {
  audience: Pick<Audience, "id" | "key" | "kind">;
  profileId: string;
  at: number;
  seq: number;
  /** Segments: true on entry, false on exit. */
  entered?: boolean;
  /** Computed traits: the new value. */
  value?: unknown;
}

export interface ActivationEnvelope {
  v: 1;
  workspaceId: string;
  profileId: string;
  audienceId: string;
  messages: Record<string, unknown>[];
}

/** Who a change is about: the ids destinations know them by, and their consent (category → consented) when they stated any. */
export interface Recipient {
  userId: string | null;
  anonymousId: string | null;
  categoryPreferences?: Record<string, boolean>;
}

/**
 * What destinations receive for a change, shaped as Segment's Engage sends it:
 * an `identify` carrying the audience key (true / false) or the computed
 * trait's value, and for audiences a `Audience Entered` / `Audience Exited`
 * track, each with `context.personas` naming the computation. The profile's
 * consent travels as `context.consent.categoryPreferences`, so delivery
 * routing holds audience syncs to it as it does events; a profile that never
 * stated consent carries none, as an event without consent would.
 */
export function activationEnvelope(workspaceId: string, change: AudienceChange, recipient: Recipient): ActivationEnvelope {
  const { audience } = change;
  const timestamp = new Date(change.at).toISOString();
  const ids = { ...(recipient.userId ? { userId: recipient.userId } : {}), ...(recipient.anonymousId ? { anonymousId: recipient.anonymousId } : {}) };
  const preferences = recipient.categoryPreferences ?? {};
  const context = {
    personas: {
      computation_class: audience.kind === "segment" ? "audience" : "computed_trait",
      computation_id: audience.id,
      computation_key: audience.key,
      space_id: workspaceId,
    },
    ...(Object.keys(preferences).length ? { consent: { categoryPreferences: preferences } } : {}),
  };
  const base = `personas_${audience.id}_${change.profileId}_${change.seq}`;
  const value = audience.kind === "segment" ? change.entered === true : change.value;
  const messages: Record<string, unknown>[] = [{ type: "identify", messageId: `${base}_identify`, timestamp, ...ids, traits: { [audience.key]: value }, context }];
  if (audience.kind === "segment") {
    messages.push({
      type: "track",
      messageId: `${base}_track`,
      timestamp,
      ...ids,
      event: change.entered ? "Audience Entered" : "Audience Exited",
      properties: { audience_key: audience.key, [audience.key]: change.entered === true },
      context,
    });
  }
  return { v: 1, workspaceId, profileId: change.profileId, audienceId: audience.id, messages };
}
