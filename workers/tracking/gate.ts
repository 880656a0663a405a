import type { Context } from "hono";
import type { SourceAuth } from "../config/keys-store";
import type { AppEnv } from "../context";
import { errorFields } from "../lib/logger";
import { ApiError } from "../lib/problem";
import { missingConsent } from "../privacy/collection";
import { recordIntakeDrops } from "../privacy/intake-drops";
import { loadPrivacySettings } from "../privacy/settings-store";
import { checkSuppressed } from "../privacy/suppression-store";
import type { CdpEvent } from "./normalize";

/**
 * What collection refuses before anything is queued: events without the
 * consent the workspace requires, and events carrying a suppressed
 * identifier. The caller still answers Segment's success for them, so SDKs do
 * not retry what will never be accepted, and a sender cannot learn from the
 * response that an identifier was deleted. Drops are counted after the
 * response (`waitUntil`). The events are stamped with the time the
 * suppressions they were checked against are good as of, so the consumer only
 * looks for newer ones.
 */
export async function gateAtCollection(c: Context<AppEnv>, source: SourceAuth, events: CdpEvent[]): Promise<{ kept: CdpEvent[]; suppressionsAsOf?: number }> {
  const { workspaceId } = source;
  let required: readonly string[];
  try {
    required = (await loadPrivacySettings(c.env.DB, workspaceId)).consent.requiredAtCollection;
  } catch (error) {
    // Nothing downstream checks consent again, so without the settings nothing is accepted.
    c.get("logger").error("privacy settings unavailable", errorFields(error));
    throw new ApiError("UNAVAILABLE", "the workspace's consent settings could not be read; nothing was accepted, retry the request", { headers: { "retry-after": "5" } });
  }
  const consented = events.filter((event) => missingConsent(event, required).length === 0);

  let kept = consented;
  let suppressionsAsOf: number | undefined;
  try {
    const check = await checkSuppressed(c.env.DB, workspaceId, consented, "edge");
    kept = consented.filter((_, i) => !check.suppressed[i]);
    suppressionsAsOf = check.asOf;
  } catch (error) {
    // The events consumer checks suppression again with D1, so letting these through loses no protection.
    c.get("logger").warn("suppression check skipped at the edge", errorFields(error));
  }

  const counts = { consent: events.length - consented.length, suppressed: consented.length - kept.length };
  if (counts.consent || counts.suppressed) recordIntakeDrops((promise) => c.executionCtx.waitUntil(promise), c.env.DB, workspaceId, counts);
  return { kept, ...(suppressionsAsOf === undefined ? {} : { suppressionsAsOf }) };
}
