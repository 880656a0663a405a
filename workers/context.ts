import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Db } from "./db/client";
import type { Logger } from "./lib/logger";
import type { ProfileApiContext } from "./profile-api/context";

/** What every handler can reach through `c`: bindings, and services built once per request. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    logger: Logger;
    db: Db;
    /** Set by the admin auth middleware. `null` workspace means the root admin token. */
    admin?: { workspaceId: string | null; scopes: string[]; actor: string };
    /** Set by the Profile API middleware: the space read and how. */
    profiles?: ProfileApiContext;
  };
}

export type App = OpenAPIHono<AppEnv>;
