import { z } from "zod";

/**
 * A workspace's privacy settings: its consent categories, which of them
 * collection requires, and how long each kind of data is kept. Pure: stored as
 * JSON in D1 (`privacy_settings`), parsed here wherever it is read.
 */

const categoryId = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, "a category id is 1–64 letters, digits, '_', '.', ':' or '-'");

/** Days to keep, or null to keep forever. */
const days = z.number().int().min(1).max(3650).nullable();

export const retentionSchema = z.strictObject({
  /** Raw events in the R2 archive (and the archive index). */
  archive: days,
  /** Events in D1 (`profile_events`, the Profile API's `/events`). */
  events: days,
  /** Event payloads in the workspace's identity object (segment rebuilds and backfills read them). */
  objectEvents: days,
  /** The delivery log (`deliveries`). */
  deliveryLog: days,
  /** The audit log. */
  auditLog: days,
  /** Access-request documents in R2, from when they were written (a copy of everything about a person). */
  accessExports: days.default(30),
});
export type Retention = z.infer<typeof retentionSchema>;
export type RetentionKind = keyof Retention;

export const privacySettingsSchema = z
  .strictObject({
    consent: z.strictObject({
      categories: z
        .array(z.strictObject({ id: categoryId, name: z.string().min(1).max(200), description: z.string().max(2000).optional() }))
        .max(50, "at most 50 consent categories"),
      /**
       * Categories an event must carry as consented (`context.consent.categoryPreferences[id] === true`)
       * to be collected at all; others are dropped before the archive and counted.
       */
      requiredAtCollection: z.array(categoryId).max(50),
    }),
    retention: retentionSchema,
  })
  .superRefine((settings, ctx) => {
    const known = new Set(settings.consent.categories.map((c) => c.id));
    const seen = new Set<string>();
    settings.consent.categories.forEach((category, i) => {
      if (seen.has(category.id)) ctx.addIssue({ code: "custom", path: ["consent", "categories", i, "id"], message: `category '${category.id}' is listed twice` });
      seen.add(category.id);
    });
    settings.consent.requiredAtCollection.forEach((id, i) => {
      if (!known.has(id)) ctx.addIssue({ code: "custom", path: ["consent", "requiredAtCollection", i], message: `'${id}' is not one of the workspace's consent categories` });
    });
  });
export type PrivacySettings = z.infer<typeof privacySettingsSchema>;

/** Segment's default consent categories; nothing required at collection; events kept 90 days where they serve reads. */
export const DEFAULT_PRIVACY_SETTINGS: PrivacySettings = {
  consent: {
    categories: [
      { id: "necessary", name: "Strictly necessary" },
      { id: "functional", name: "Functional" },
      { id: "analytics", name: "Analytics" },
      { id: "advertising", name: "Advertising" },
      { id: "personalization", name: "Personalization" },
    ],
    requiredAtCollection: [],
  },
  retention: { archive: 365, events: 90, objectEvents: 90, deliveryLog: 30, auditLog: 730, accessExports: 30 },
};

/** The name of the event that updates a profile's consent state (Segment's). */
export const CONSENT_EVENT = "Segment Consent Preference Updated";
