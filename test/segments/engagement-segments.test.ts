import { describe, expect, it } from "vitest";
import { check, DAY, flipsAt, HOUR, MINUTE, NOW, person, segment, track } from "./helpers";

const seriesA = [{ property: "series", op: "equals", value: "A" }];
const emailIds = (event: string, limit: number) => ({ aggregate: { function: "unique_list", event, where: seriesA, property: "email_id", limit } });

describe("opened every email of series A but clicked none of the last 3", () => {
  // "Every email" is set inclusion: the ids delivered are a subset of the ids opened.
  // "The last 3" is the three most recently delivered ids: a unique_list is newest first.
  const completists = segment({
    kind: "and",
    conditions: [
      { kind: "event", event: "Email Delivered", where: seriesA },
      { kind: "compare", left: emailIds("Email Delivered", 1000), op: "subset_of", right: emailIds("Email Opened", 1000) },
      { kind: "compare", left: emailIds("Email Link Clicked", 1000), op: "disjoint", right: emailIds("Email Delivered", 3) },
    ],
  });
  const series = (opened: string[], clicked: string[]) =>
    ["a1", "a2", "a3", "a4", "a5"].flatMap((email_id, i) => {
      const at = NOW - 10 * DAY + i * 2 * DAY;
      return [
        track("Email Delivered", at, { series: "A", email_id }),
        ...(opened.includes(email_id) ? [track("Email Opened", at + HOUR, { series: "A", email_id })] : []),
        ...(clicked.includes(email_id) ? [track("Email Link Clicked", at + 2 * HOUR, { series: "A", email_id })] : []),
      ];
    });
  const all = ["a1", "a2", "a3", "a4", "a5"];

  it("admits whoever opened all five and clicked only an older one, whatever other series they ignore", () => {
    const who = person([...series(all, ["a1", "a2"]), track("Email Delivered", NOW - DAY, { series: "B", email_id: "b1" })]);
    expect(check(completists, who, NOW)).toEqual({ member: true, nextChangeAt: null });
  });

  it("keeps out a click on one of the last three, and a single unopened email", () => {
    expect(check(completists, person(series(all, ["a4"])), NOW).member).toBe(false);
    expect(check(completists, person(series(["a1", "a2", "a3", "a4"], [])), NOW).member).toBe(false);
    expect(check(completists, person([]), NOW).member).toBe(false);
  });

  it("drops a member when a new email arrives unopened, and takes them back once they open it", () => {
    const delivered = track("Email Delivered", NOW - HOUR, { series: "A", email_id: "a6" });
    expect(check(completists, person([...series(all, []), delivered]), NOW).member).toBe(false);
    const opened = track("Email Opened", NOW - MINUTE, { series: "A", email_id: "a6" });
    expect(check(completists, person([...series(all, []), delivered, opened]), NOW).member).toBe(true);
  });

  it("agrees with the unique-count encoding: distinct ids opened equal distinct ids delivered", () => {
    const counted = segment({
      kind: "and",
      conditions: [
        { kind: "event", event: "Email Delivered", where: seriesA },
        {
          kind: "compare",
          left: { aggregate: { function: "unique_count", event: "Email Opened", where: seriesA, property: "email_id" } },
          op: "equals",
          right: { aggregate: { function: "unique_count", event: "Email Delivered", where: seriesA, property: "email_id" } },
        },
        { kind: "compare", left: emailIds("Email Link Clicked", 1000), op: "disjoint", right: emailIds("Email Delivered", 3) },
      ],
    });
    for (const [opened, clicked] of [[all, ["a1"]], [all, ["a5"]], [["a1", "a3"], []]] as const) {
      const who = person(series([...opened], [...clicked]));
      expect(check(counted, who, NOW)).toEqual(check(completists, who, NOW));
    }
  });
});

describe("logged in within the last 24 hours but has not completed the profile", () => {
  const incomplete = segment({
    kind: "and",
    conditions: [
      { kind: "event", event: "Signed In", window: { within: { hours: 24 } } },
      { kind: "trait", trait: "profile_completed", op: "not_equals", value: true },
    ],
  });
  const signedIn = () => [track("Signed In", NOW - 23 * HOUR - 30_000)];

  it("admits until the sign-in is 24 hours old, rounded up to its minute", () => {
    flipsAt(incomplete, person(signedIn(), { traits: { profile_completed: false } }), NOW, { member: true, nextChangeAt: NOW + HOUR });
    expect(check(incomplete, person(signedIn()), NOW).member).toBe(true);
  });

  it("keeps out a completed profile whatever they do", () => {
    expect(check(incomplete, person(signedIn(), { traits: { profile_completed: true } }), NOW)).toEqual({ member: false, nextChangeAt: null });
  });
});

describe("new subscribers (< 7 days) who opened the welcome email and clicked getting started", () => {
  const onboarding = segment({
    kind: "and",
    conditions: [
      { kind: "trait", trait: "subscribed_at", op: "within_last", duration: { days: 7 } },
      { kind: "event", event: "Email Opened", where: [{ property: "email_id", op: "equals", value: "welcome" }] },
      {
        kind: "event",
        event: "Email Link Clicked",
        where: [
          { property: "email_id", op: "equals", value: "welcome" },
          { property: "link_url", op: "contains", value: "/getting-started" },
        ],
      },
    ],
  });
  const subscribed = { subscribed_at: new Date(NOW - 5 * DAY).toISOString() };
  const opened = () => track("Email Opened", NOW - 4 * DAY, { email_id: "welcome" });
  const clicked = (link_url: string) => track("Email Link Clicked", NOW - 4 * DAY + MINUTE, { email_id: "welcome", link_url });

  it("admits until the subscription is exactly 7 days old", () => {
    const who = person([opened(), clicked("https://x.io/getting-started?utm=1")], { traits: subscribed });
    flipsAt(onboarding, who, NOW, { member: true, nextChangeAt: NOW + 2 * DAY });
  });

  it("keeps out another link, no click, and an older subscriber", () => {
    expect(check(onboarding, person([opened(), clicked("https://x.io/pricing")], { traits: subscribed }), NOW)).toEqual({ member: false, nextChangeAt: null });
    expect(check(onboarding, person([opened()], { traits: subscribed }), NOW).member).toBe(false);
    const older = { subscribed_at: new Date(NOW - 8 * DAY).toISOString() };
    expect(check(onboarding, person([opened(), clicked("https://x.io/getting-started")], { traits: older }), NOW).member).toBe(false);
  });
});

describe("at risk: no engagement in 90 days, no purchase in 30, once engaged with premium content", () => {
  const atRisk = segment({
    kind: "and",
    conditions: [
      {
        kind: "event",
        event: ["Email Opened", "Email Link Clicked", "Signed In", "Content Viewed", "Product Viewed"],
        window: { within: { days: 90 } },
        count: { op: "equals", value: 0 },
      },
      { kind: "event", event: "Order Completed", window: { within: { days: 30 } }, count: { op: "equals", value: 0 } },
      { kind: "event", event: "Content Viewed", where: [{ property: "tier", op: "equals", value: "premium" }] },
    ],
  });
  const premium = (at: number) => track("Content Viewed", at, { tier: "premium" });

  it("admits a lapsed premium reader, however old their last purchase", () => {
    expect(check(atRisk, person([premium(NOW - 100 * DAY), track("Order Completed", NOW - 45 * DAY)]), NOW)).toEqual({ member: true, nextChangeAt: null });
  });

  it("admits when the last engagement turns 90 days old, and after a recent purchase turns 30", () => {
    flipsAt(atRisk, person([premium(NOW - 120 * DAY), track("Email Opened", NOW - 89 * DAY - 12 * HOUR)]), NOW, { member: false, nextChangeAt: NOW + 12 * HOUR });
    flipsAt(atRisk, person([premium(NOW - 120 * DAY), track("Order Completed", NOW - 10 * DAY)]), NOW, { member: false, nextChangeAt: NOW + 20 * DAY });
  });

  it("keeps out whoever never read premium content", () => {
    expect(check(atRisk, person([track("Content Viewed", NOW - 100 * DAY, { tier: "free" })]), NOW)).toEqual({ member: false, nextChangeAt: null });
  });
});

describe("high-intent browser at risk: 5+ views in category A, no purchase in 90 days, last email open 30+ days ago", () => {
  const highIntent = segment({
    kind: "and",
    conditions: [
      { kind: "event", event: "Product Viewed", where: [{ property: "category", op: "equals", value: "A" }], count: { op: "gte", value: 5 } },
      { kind: "event", event: "Order Completed", window: { within: { days: 90 } }, count: { op: "equals", value: 0 } },
      { kind: "since_last", event: "Email Opened", atLeast: { days: 30 } },
    ],
  });
  const views = (n: number) => Array.from({ length: n }, (_, i) => track("Product Viewed", NOW - 40 * DAY + i * DAY, { category: "A" }));

  it("admits exactly 30 days after the last open", () => {
    const who = person([...views(5), track("Order Completed", NOW - 100 * DAY), track("Email Opened", NOW - 60 * DAY), track("Email Opened", NOW - 25 * DAY)]);
    flipsAt(highIntent, who, NOW, { member: false, nextChangeAt: NOW + 5 * DAY });
  });

  it("admits when the last purchase leaves the 90-day window, at the end of its hour", () => {
    const who = person([...views(6), track("Order Completed", NOW - 80 * DAY + 30 * MINUTE), track("Email Opened", NOW - 40 * DAY)]);
    flipsAt(highIntent, who, NOW, { member: false, nextChangeAt: NOW + 10 * DAY + HOUR });
  });

  it("keeps out fewer views and whoever never opened an email", () => {
    expect(check(highIntent, person([...views(4), track("Email Opened", NOW - 40 * DAY)]), NOW).member).toBe(false);
    expect(check(highIntent, person(views(5)), NOW)).toEqual({ member: false, nextChangeAt: null });
  });
});
