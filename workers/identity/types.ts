/**
 * Identity resolution's vocabulary, shared by the pure domain code in this
 * folder and the Durable Objects that apply it. No bindings here.
 */

/** Built-in identifier types; workspaces may add custom external-id types (any other lowercase name). */
export const BUILT_IN_TYPES = ["user_id", "email", "phone", "anonymous_id", "device_id", "advertising_id"] as const;

export interface Identifier {
  /** `user_id`, `email`, `phone`, `anonymous_id`, `device_id`, `advertising_id`, or a custom external-id type. */
  type: string;
  /** Normalized value (emails lowercased and trimmed, phones in E.164, …). */
  value: string;
}

export const identifierKey = (identifier: Identifier) => `${identifier.type}:${identifier.value}`;

/** How many distinct values of a type one profile may hold, ever or within a sliding window. */
export interface IdentifierRule {
  type: string;
  /** 1 is the highest priority; when a merge would break a limit, the lowest-priority conflicting identifiers are dropped first. */
  priority: number;
  limit: number;
  /** `ever`, or a window in days (anonymous and device ids: 5 per 7 days by default). */
  window: "ever" | { days: number };
}
