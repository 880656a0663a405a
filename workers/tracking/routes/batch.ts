import type { App } from "../../context";
import { parseJsonBody, readLimitedText } from "../../intake/body";
import { ApiError, type FieldError, fieldErrors } from "../../lib/problem";
import { acceptEvents, authenticateSource, enforceSourceRateLimit } from "../intake";
import { describeLimit, LIMITS } from "../limits";
import { type CdpEvent, normalizeMessage } from "../normalize";
import { batchEnvelopeSchema } from "../schema";

export interface RejectedMessage {
  index: number;
  messageId?: string;
  errors: FieldError[];
}

export function registerBatchRoutes(app: App) {
  app.on("POST", ["/v1/batch", "/v1/b", "/v1/import"], async (c) => {
    const receivedAt = new Date();
    const { text } = await readLimitedText(c.req.raw, LIMITS.batchBytes, describeLimit.batchBytes);
    const body = parseJsonBody(text);
    const source = await authenticateSource(c, body);
    await enforceSourceRateLimit(c, source);

    const envelope = batchEnvelopeSchema.safeParse(body);
    if (!envelope.success) throw new ApiError("VALIDATION_FAILED", "the batch envelope is invalid", { errors: fieldErrors(envelope.error.issues) });
    const { batch, context, integrations, sentAt } = envelope.data;
    if (batch.length > LIMITS.batchMessages) {
      throw new ApiError("PAYLOAD_TOO_LARGE", `batch has ${batch.length} messages, over ${describeLimit.batchMessages}`, {
        errors: [{ path: "batch", message: `at most ${LIMITS.batchMessages} messages` }],
        extensions: { limit: LIMITS.batchMessages },
      });
    }
    if (batch.length === 0) throw new ApiError("VALIDATION_FAILED", "the batch is empty", { errors: [{ path: "batch", message: "must hold at least one message" }] });

    const accepted: CdpEvent[] = [];
    const rejected: RejectedMessage[] = [];
    batch.forEach((item, index) => {
      const result = normalizeMessage(item, { defaults: { context, integrations, sentAt }, receivedAt });
      if (result.ok) accepted.push(result.event);
      else {
        const messageId = typeof item === "object" && item !== null ? (item as { messageId?: unknown }).messageId : undefined;
        rejected.push({
          index,
          ...(typeof messageId === "string" ? { messageId } : {}),
          errors: result.errors.map((e) => ({ ...e, path: `batch.${index}${e.path === "(root)" ? "" : `.${e.path}`}` })),
        });
      }
    });

    if (accepted.length === 0) {
      throw new ApiError("VALIDATION_FAILED", `all ${batch.length} messages in the batch are invalid`, {
        errors: rejected.flatMap((r) => r.errors),
        extensions: { rejected },
      });
    }
    // `accepted` counts valid messages, dropped ones included: the response must not reveal a suppression.
    await acceptEvents(c, source, accepted);
    if (rejected.length > 0) c.get("logger").warn("batch partially rejected", { accepted: accepted.length, rejected: rejected.length });
    return c.json({ success: true as const, accepted: accepted.length, rejected });
  });
}
