import { ApiError } from "../lib/problem";

/**
 * Reads a request body up to `limit` bytes, decompressing gzip/deflate first
 * when the client says so, and refuses anything larger without buffering it.
 * `limitName` is the human name of the limit, used in the error.
 */
export async function readLimitedText(request: Request, limit: number, limitName: string): Promise<{ text: string; bytes: number }> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  const encoding = request.headers.get("content-encoding")?.toLowerCase();
  if (!encoding && Number.isFinite(declared) && declared > limit) {
    throw new ApiError("PAYLOAD_TOO_LARGE", `body is ${declared} bytes, over ${limitName}`, { extensions: { limit } });
  }
  if (!request.body) return { text: "", bytes: 0 };
  if (!encoding && Number.isFinite(declared)) {
    // The declared length is within the limit and the runtime enforces it: read in one go.
    const text = await request.text();
    return { text, bytes: declared };
  }
  let stream: ReadableStream<Uint8Array> = request.body;
  if (encoding === "gzip" || encoding === "deflate") {
    stream = stream.pipeThrough(new DecompressionStream(encoding) as unknown as ReadableWritablePair<Uint8Array, Uint8Array>);
  } else if (encoding && encoding !== "identity") {
    throw new ApiError("VALIDATION_FAILED", `unsupported content-encoding '${encoding}'; send gzip, deflate or identity`, {
      errors: [{ path: "headers.content-encoding", message: "must be gzip, deflate or identity" }],
    });
  }
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel();
        throw new ApiError("PAYLOAD_TOO_LARGE", `body is over ${limitName}`, { extensions: { limit } });
      }
      chunks.push(value);
    }
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError("VALIDATION_FAILED", `could not read the body: ${(error as Error).message}`, {
      errors: [{ path: "(body)", message: "unreadable or badly compressed body" }],
    });
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { text: new TextDecoder().decode(bytes), bytes: total };
}

export function parseJsonBody(text: string): unknown {
  if (text.trim() === "") throw new ApiError("INVALID_JSON", "body is empty; send a JSON object", { errors: [{ path: "(body)", message: "empty" }] });
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApiError("INVALID_JSON", `body is not valid JSON: ${(error as Error).message}`, {
      errors: [{ path: "(body)", message: "invalid JSON" }],
    });
  }
}
