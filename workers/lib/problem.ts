import { DurableObjectOverloaded, isOverloaded } from "./durable-object-retry";

/**
 * Every error a caller can cause is one of these codes. The code decides the
 * HTTP status and the problem `type`; nothing else in the codebase picks a status.
 */
export const ErrorCode = {
  INVALID_JSON: 400,
  VALIDATION_FAILED: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;
export type ErrorCode = keyof typeof ErrorCode;

const TITLES: Record<ErrorCode, string> = {
  INVALID_JSON: "Body is not valid JSON",
  VALIDATION_FAILED: "Request failed validation",
  UNAUTHORIZED: "Missing or invalid credentials",
  FORBIDDEN: "Credentials lack the required scope",
  NOT_FOUND: "Not found",
  CONFLICT: "Conflicts with the current state",
  PAYLOAD_TOO_LARGE: "Payload exceeds a limit",
  RATE_LIMITED: "Rate limit exceeded",
  INTERNAL: "Internal error",
  UNAVAILABLE: "Temporarily unavailable",
};

export interface FieldError {
  /** Dotted path into the request body, with array indexes: `batch.3.event`. */
  path: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  errors?: FieldError[];
  requestId?: string;
  [extension: string]: unknown;
}

export const problemType = (code: ErrorCode) => `urn:edge-cdp:problem:${code.toLowerCase().replaceAll("_", "-")}`;

/** Thrown anywhere in a request; the app's single `onError` turns it into a problem document. */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    detail: string,
    readonly options: {
      errors?: FieldError[];
      headers?: Record<string, string>;
      extensions?: Record<string, unknown>;
    } = {},
  ) {
    super(detail);
    this.status = ErrorCode[code];
  }

  toProblem(requestId?: string): Problem {
    return {
      type: problemType(this.code),
      title: TITLES[this.code],
      status: this.status,
      detail: this.message,
      code: this.code,
      ...(this.options.errors ? { errors: this.options.errors } : {}),
      ...this.options.extensions,
      ...(requestId ? { requestId } : {}),
    };
  }
}

export function problemResponse(error: ApiError, requestId?: string, extraHeaders: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(error.toProblem(requestId)), {
    status: error.status,
    headers: {
      "content-type": "application/problem+json",
      ...(requestId ? { "x-request-id": requestId } : {}),
      ...error.options.headers,
      ...extraHeaders,
    },
  });
}

/**
 * Seconds a caller is asked to stay away from an overloaded Durable Object:
 * the runtime sheds load in windows of a few seconds, and an immediate retry
 * is the load it is shedding.
 */
export const OVERLOADED_RETRY_AFTER_SECONDS = 5;

/**
 * An overloaded Durable Object as the 503 problem a client can act on (wait,
 * then retry); any other error unchanged, for `onError` to handle as before.
 */
export function overloadedAsProblem(error: unknown): unknown {
  if (!isOverloaded(error)) return error;
  const object = error instanceof DurableObjectOverloaded ? `Durable Object ${error.object}` : "a Durable Object";
  return new ApiError("UNAVAILABLE", `${object} is overloaded; retry after ${OVERLOADED_RETRY_AFTER_SECONDS} seconds`, {
    headers: { "retry-after": String(OVERLOADED_RETRY_AFTER_SECONDS) },
  });
}

/** Turns zod issues into field errors whose paths are relative to `prefix`. */
export function fieldErrors(issues: readonly { path: readonly PropertyKey[]; message: string }[], prefix: (string | number)[] = []): FieldError[] {
  return issues.map((issue) => ({
    path: [...prefix, ...issue.path].map(String).join(".") || "(root)",
    message: issue.message,
  }));
}
