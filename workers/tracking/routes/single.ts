import type { App } from "../../context";
import { parseJsonBody, readLimitedText } from "../../intake/body";
import { ApiError } from "../../lib/problem";
import { acceptEvents, authenticateSource, enforceSourceRateLimit, withoutWriteKey } from "../intake";
import { describeLimit, LIMITS } from "../limits";
import { normalizeMessage } from "../normalize";
import type { MessageType } from "../schema";
import { processNow, wantsSync } from "../sync";

/** `/v1/track` and its analytics.js short form `/v1/t`, and so on for every type. */
export const SINGLE_ROUTES: [MessageType, string][] = [
  ["identify", "i"],
  ["track", "t"],
  ["page", "p"],
  ["screen", "s"],
  ["group", "g"],
  ["alias", "a"],
];

export function registerSingleRoutes(app: App) {
  for (const [type, short] of SINGLE_ROUTES) {
    app.on("POST", [`/v1/${type}`, `/v1/${short}`], async (c) => {
      const receivedAt = new Date();
      const { text, bytes } = await readLimitedText(c.req.raw, LIMITS.messageBytes, describeLimit.messageBytes);
      const body = parseJsonBody(text);
      const source = await authenticateSource(c, body);
      await enforceSourceRateLimit(c, source);
      const result = normalizeMessage(withoutWriteKey(body), { impliedType: type, receivedAt, byteLength: bytes });
      if (!result.ok) throw new ApiError("VALIDATION_FAILED", `the ${type} message is invalid: ${result.errors.map((e) => `${e.path} ${e.message}`).join("; ")}`, { errors: result.errors });
      const [kept] = await acceptEvents(c, source, [result.event]);
      // A dropped event has no profile to show; the answer is the same as for one whose processing failed.
      if (wantsSync(c)) return c.json({ success: true as const, profile: kept ? await processNow(c, source, kept) : null });
      return c.json({ success: true as const });
    });
  }
}
