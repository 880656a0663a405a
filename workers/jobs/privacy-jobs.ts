import { runDeletionStep } from "../privacy/deletion-job";
import { runExport } from "../privacy/export-job";
import type { JobMessage } from "./backfill";

type PrivacyJobMessage = Extract<JobMessage, { kind: "privacy-export" | "privacy-deletion" }>;

/** One step of a privacy request's job; the request row records what each step did. */
export function runPrivacyJob(env: Env, job: PrivacyJobMessage): Promise<{ processed: number; total: number; next: string | null; sent: number }> {
  return job.kind === "privacy-export" ? runExport(env, job.requestId) : runDeletionStep(env, job.requestId, job.after);
}
