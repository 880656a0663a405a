import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../context";
import { intakeDropsByDay } from "../privacy/intake-drops";
import { loadPrivacySettings } from "../privacy/settings-store";
import { CONSENT_EVENT } from "../privacy/settings";
import { requireScope, targetWorkspace } from "./auth";
import { json, problemResponses, workspaceQuery } from "./schemas";

const PATH = "/admin/v1/privacy/collection";
const MAX_DAYS = 90;

const dailySchema = z
  .object({
    day: z.string().openapi({ description: "UTC day, `yyyy-mm-dd`.", example: "2026-11-22" }),
    suppressed: z.number().int().openapi({ description: "Events dropped for carrying a suppressed identifier." }),
    consent: z.number().int().openapi({ description: "Events dropped for lacking a category the workspace requires at collection." }),
  })
  .openapi("CollectionDrops");

const reportSchema = z
  .object({
    workspaceId: z.string(),
    requiredAtCollection: z.array(z.string()).openapi({ description: "The consent categories collection requires now (privacy settings)." }),
    days: z.array(dailySchema),
    totals: z.object({ suppressed: z.number().int(), consent: z.number().int() }),
  })
  .openapi("CollectionReport");

export function registerPrivacyCollectionRoute(app: App) {
  app.use(PATH, requireScope("privacy"));

  app.openapi(
    createRoute({
      method: "get",
      path: PATH,
      tags: ["Privacy"],
      summary: "Events dropped at collection, per day and reason",
      description:
        "Daily counters (UTC) of events dropped before the archive, oldest day first, days without drops as zeros. `consent`: the event's " +
        "`context.consent.categoryPreferences` did not mark every category in `requiredAtCollection` as `true` (an event without consent lacks them all; " +
        `the \`${CONSENT_EVENT}\` event is never dropped for consent). \`suppressed\`: the event carried a suppressed identifier, found at the edge or by the events consumer. ` +
        "Senders get `200 {\"success\":true}` for dropped events; these counters are where drops show.",
      request: {
        query: workspaceQuery.extend({
          days: z.coerce.number().int().min(1).max(MAX_DAYS).default(7).openapi({ description: `How many days back, today included (1–${MAX_DAYS}).` }),
        }),
      },
      responses: { 200: json(reportSchema, "The counters"), ...problemResponses },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const workspaceId = targetWorkspace(c.get("admin")!, query.workspaceId);
      const [days, settings] = await Promise.all([intakeDropsByDay(c.env.DB, workspaceId, query.days), loadPrivacySettings(c.env.DB, workspaceId)]);
      const totals = days.reduce((sum, day) => ({ suppressed: sum.suppressed + day.suppressed, consent: sum.consent + day.consent }), { suppressed: 0, consent: 0 });
      return c.json({ workspaceId, requiredAtCollection: settings.consent.requiredAtCollection, days, totals }, 200);
    },
  );
}
