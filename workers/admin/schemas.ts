import { z } from "@hono/zod-openapi";

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    requestId: z.string().optional(),
  })
  .openapi("Problem");

export const problemResponses = {
  400: { description: "Invalid request", content: { "application/problem+json": { schema: problemSchema } } },
  401: { description: "Missing or invalid credentials", content: { "application/problem+json": { schema: problemSchema } } },
  403: { description: "Token lacks the scope", content: { "application/problem+json": { schema: problemSchema } } },
  404: { description: "Not found", content: { "application/problem+json": { schema: problemSchema } } },
} as const;

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const idParam = (name: string, example: string) =>
  z.object({ id: z.string().min(1).openapi({ param: { name: "id", in: "path" }, example, description: `${name} id` }) });

export const workspaceQuery = z.object({
  workspaceId: z.string().min(1).optional().openapi({ description: "Required with the root admin token; a workspace token is confined to its own." }),
});

export const isoDate = (value: Date | null | undefined) => (value ? value.toISOString() : null);
