import { describe, expect, it } from "vitest";
import { track } from "../helpers";
import { unique, waitForProfile } from "./helpers";

describe("smoke", () => {
  it("identify reaches the Profile API", async () => {
    const userId = unique("u");
    const response = await track("/v1/identify", { userId, traits: { plan: "pro", email: `${userId}@example.com` } });
    expect(response.status).toBe(200);
    const body = await waitForProfile<{ traits: Record<string, unknown> }>(`users/profiles/user_id:${userId}/traits`);
    expect(body.traits).toEqual({ plan: "pro", email: `${userId}@example.com` });
  });
});
