import { OpenAPIHono } from "@hono/zod-openapi";
import { cors } from "hono/cors";
import { registerAdminRoutes } from "./admin";
import type { AppEnv } from "./context";
import { lazyDb } from "./db/client";
import { createLogger, errorFields } from "./lib/logger";
import { ApiError, fieldErrors, overloadedAsProblem, problemResponse } from "./lib/problem";
import { registerProfileApiRoutes } from "./profile-api/routes";
import { registerTrackingRoutes } from "./tracking/routes";

export function createApp() {
  const app = new OpenAPIHono<AppEnv>({
    // Schema failures in OpenAPI routes become the same problem document as everything else.
    defaultHook: (result) => {
      if (!result.success) {
        throw new ApiError("VALIDATION_FAILED", "request failed validation", { errors: fieldErrors(result.error.issues) });
      }
    },
  });

  app.use("*", async (c, next) => {
    const requestId = c.req.header("cf-ray") ?? crypto.randomUUID();
    c.set("requestId", requestId);
    c.set("logger", createLogger({ requestId, method: c.req.method, path: c.req.path }));
    c.set("db", lazyDb(c.env.DB));
    await next();
    c.header("x-request-id", requestId);
  });

  // Browsers post to the tracking API from any origin. analytics.js sends Authorization (so every post
  // is preflighted) and X-Retry-Count on retries; the requested headers are reflected so that an SDK
  // adding a header never has its retries blocked. The write key, not the origin, authenticates.
  app.use("/v1/*", cors({ origin: "*", allowMethods: ["GET", "POST", "OPTIONS"], maxAge: 86_400 }));

  app.onError((thrown, c) => {
    const requestId = c.get("requestId");
    const logger = c.get("logger") ?? createLogger({ requestId });
    // An overloaded Durable Object, from any route: a 503 the client can wait out.
    const error = overloadedAsProblem(thrown);
    if (error instanceof ApiError) {
      logger.warn("request rejected", { status: error.status, code: error.code, detail: error.message, errors: error.options.errors });
      return problemResponse(error, requestId, corsHeaders(c.req.path));
    }
    logger.error("unhandled error", errorFields(error));
    return problemResponse(new ApiError("INTERNAL", "an unexpected error occurred; quote the request id when reporting it"), requestId, corsHeaders(c.req.path));
  });

  app.notFound((c) => {
    throw new ApiError("NOT_FOUND", `no route for ${c.req.method} ${c.req.path}`);
  });

  registerTrackingRoutes(app);
  registerProfileApiRoutes(app);
  registerAdminRoutes(app);

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Edge CDP",
      version: "1.0.0",
      description: "Segment-compatible tracking API and the admin API of the Edge CDP. Errors are RFC 9457 problem documents.",
    },
    security: [{ bearerAuth: [] }],
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", { type: "http", scheme: "bearer" });
  app.openAPIRegistry.registerComponent("securitySchemes", "basicAuth", { type: "http", scheme: "basic" });

  return app;
}

/** Error responses from onError bypass the cors middleware's headers, so tracking errors add them here. */
const corsHeaders = (path: string): Record<string, string> => (path.startsWith("/v1/") ? { "access-control-allow-origin": "*" } : {});
