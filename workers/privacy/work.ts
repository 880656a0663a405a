import { z } from "zod";

/**
 * What a privacy request's job needs in the clear while it runs — the
 * person's identifier values, events and deletion payload — kept in one R2
 * object beside the request rather than in D1, and removed when the job ends,
 * so a finished request leaves only hashes and masked hints behind.
 */

const identifierSchema = z.object({ type: z.string(), value: z.string() });

export const privacyWorkSchema = z.object({
  v: z.literal(1),
  workspaceId: z.string(),
  requestId: z.string(),
  /** The identifier the request named, normalised. */
  subject: identifierSchema,
  /** Every profile id the person had, live and absorbed. */
  profileIds: z.array(z.string()),
  identifiers: z.array(identifierSchema),
  messageIds: z.array(z.string()),
  /** What a destination's deletion call names the person by. */
  person: z.object({ userId: z.string().nullable(), anonymousIds: z.array(z.string()), emails: z.array(z.string()) }),
});
export type PrivacyWork = z.infer<typeof privacyWorkSchema>;

export const workKey = (workspaceId: string, requestId: string) => `privacy/work/${workspaceId}/${requestId}.json`;

export async function putWork(bucket: R2Bucket, work: PrivacyWork): Promise<void> {
  await bucket.put(workKey(work.workspaceId, work.requestId), JSON.stringify(work), { httpMetadata: { contentType: "application/json" } });
}

/** The work of a request; null once the job has ended and removed it. */
export async function getWork(bucket: R2Bucket, workspaceId: string, requestId: string): Promise<PrivacyWork | null> {
  const object = await bucket.get(workKey(workspaceId, requestId));
  return object ? privacyWorkSchema.parse(await object.json()) : null;
}

export const deleteWork = (bucket: R2Bucket, workspaceId: string, requestId: string) => bucket.delete(workKey(workspaceId, requestId));
