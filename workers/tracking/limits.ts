/** Segment's HTTP Tracking API limits, kept exactly so clients behave the same against us. */
export const LIMITS = {
  messageBytes: 32 * 1024,
  batchBytes: 500 * 1024,
  batchMessages: 2_500,
} as const;

export const describeLimit = {
  messageBytes: `the 32 KB per-message limit (${LIMITS.messageBytes} bytes)`,
  batchBytes: `the 500 KB per-batch limit (${LIMITS.batchBytes} bytes)`,
  batchMessages: `the ${LIMITS.batchMessages.toLocaleString("en-US")}-messages per-batch limit`,
} as const;
