import { isBlockedValue } from "../identity/blocked";
import { extractIdentifiers, normalizeIdentifier, previousUserId } from "../identity/extract";
import { DEFAULT_IDENTITY_SETTINGS } from "../identity/settings";
import { identifierKey } from "../identity/types";
import type { QueuedEvent } from "../intake/envelope";
import type { FieldError } from "../lib/problem";
import { identifierKeyHash, maskIdentifier, suppressionForms } from "./identifiers";

/**
 * Which identifiers a suppression matches, without bindings.
 *
 * Events are read with the default identity settings, not the workspace's:
 * suppression must hold even when a workspace changes its settings later, and
 * `suppressionForms` covers the one normalisation that differs between
 * workspaces (collapsed emails). IP addresses and user agents are never
 * identifiers, so they are never suppression keys either.
 */

export const SUPPRESSION_REASONS = ["deletion", "manual"] as const;
export type SuppressionReason = (typeof SUPPRESSION_REASONS)[number];

/** How many identifiers one admin call may suppress; more go in further calls. */
export const MAX_SUPPRESSIONS_PER_CALL = 1_000;

/** Every identifier key (`type:value`) an event carries, in every form a suppression may have been stored under. */
export function eventSuppressionKeys(event: QueuedEvent): string[] {
  const { identifiers } = extractIdentifiers(event, DEFAULT_IDENTITY_SETTINGS);
  // An alias's previous id may have been a user id: a deleted user must not come back through it.
  const previous = previousUserId(event, DEFAULT_IDENTITY_SETTINGS);
  const keys = new Set<string>();
  for (const identifier of previous ? [...identifiers, previous] : identifiers) {
    for (const form of suppressionForms(identifierKey(identifier))) keys.add(form);
  }
  return [...keys];
}

/** One identifier to suppress: its hint, and the hash of each form, the key's own first. */
export interface SuppressionEntry {
  hint: string;
  hashes: string[];
}

/** The entries for a list of keys, one per distinct key, in order. */
export function suppressionEntries(workspaceId: string, keys: readonly string[]): SuppressionEntry[] {
  return [...new Set(keys)].map((key) => ({
    hint: maskIdentifier(key),
    hashes: suppressionForms(key).map((form) => identifierKeyHash(workspaceId, form)),
  }));
}

/** The distinct hashes of every suppression key of each event, and which of them belong to which event. */
export function eventKeyHashes(workspaceId: string, events: readonly QueuedEvent[]): { perEvent: string[][]; distinct: string[] } {
  const byKey = new Map<string, string>();
  const perEvent = events.map((event) =>
    eventSuppressionKeys(event).map((key) => {
      let hash = byKey.get(key);
      if (hash === undefined) byKey.set(key, (hash = identifierKeyHash(workspaceId, key)));
      return hash;
    }),
  );
  return { perEvent, distinct: [...byKey.values()] };
}

export type SuppressionKeysResult = { ok: true; keys: string[] } | { ok: false; errors: FieldError[] };

/**
 * Turns identifiers an admin typed into keys, normalised as identity
 * resolution normalises event values so that `Jane@X.com` suppresses what
 * events send as `jane@x.com`. Errors carry `identifiers.{i}.{field}` paths.
 */
export function suppressionKeys(identifiers: readonly { type: string; value: string }[]): SuppressionKeysResult {
  const errors: FieldError[] = [];
  const keys: string[] = [];
  identifiers.forEach(({ type, value }, index) => {
    const normalized = normalizeIdentifier(type, value, DEFAULT_IDENTITY_SETTINGS);
    if (!normalized.ok) {
      // A failure that does not depend on the value (an IP or user-agent type) is the type's.
      const withoutValue = normalizeIdentifier(type, undefined, DEFAULT_IDENTITY_SETTINGS);
      const field = !withoutValue.ok && withoutValue.reason === normalized.reason ? "type" : "value";
      errors.push({ path: `identifiers.${index}.${field}`, message: normalized.reason });
      return;
    }
    // A blocked value is never read from an event, so a suppression of it would never match anything.
    const blocked = isBlockedValue(normalized.identifier, DEFAULT_IDENTITY_SETTINGS);
    if (blocked) {
      errors.push({ path: `identifiers.${index}.value`, message: `is never an identifier (${blocked}), so there is nothing to suppress` });
      return;
    }
    keys.push(identifierKey(normalized.identifier));
  });
  return errors.length ? { ok: false, errors } : { ok: true, keys: [...new Set(keys)] };
}
