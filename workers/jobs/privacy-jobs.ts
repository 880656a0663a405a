import type { JobMessage } from "./backfill";

type PrivacyJobMessage = Extract<JobMessage, { kind: "privacy-export" | "privacy-deletion" }>;

/** One step of a privacy request's job; the request row records what each step did. */
export async function runPrivacyJob(_env: Env, job: PrivacyJobMessage): Promise<{ processed: number; total: number; next: string | null; sent: number }> {
  throw new Error(`privacy job ${job.jobId}: not available yet`);
}
