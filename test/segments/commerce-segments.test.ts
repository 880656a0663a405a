import { describe, expect, it } from "vitest";
import { requiredStatistics } from "../../workers/segments/specs";
import { check, DAY, flipsAt, HOUR, MINUTE, NOW, person, segment, track } from "./helpers";

const shoes = [{ property: "category", op: "equals", value: "shoes" }];

describe("viewed 3+ shoes in the last 7 days but added nothing to the cart", () => {
  const browsers = segment({
    kind: "and",
    conditions: [
      { kind: "event", event: "Product Viewed", where: shoes, window: { within: { days: 7 } }, count: { op: "gte", value: 3 } },
      { kind: "event", event: "Product Added", window: { within: { days: 7 } }, count: { op: "equals", value: 0 } },
    ],
  });
  const views = () => [
    track("Product Viewed", NOW - 6 * DAY - 20 * MINUTE, { category: "shoes" }),
    track("Product Viewed", NOW - 2 * DAY, { category: "shoes" }),
    track("Product Viewed", NOW - HOUR, { category: "shoes" }),
    track("Product Viewed", NOW - HOUR, { category: "socks" }),
  ];

  it("admits a browser until the oldest view leaves the window, at the end of its hour plus 7 days", () => {
    const after = flipsAt(browsers, person(views()), NOW, { member: true, nextChangeAt: NOW + DAY });
    expect(after.nextChangeAt).toBeNull();
    // Exactly 7 days after the view itself, the view still counts: windows round event time up to the hour.
    expect(check(browsers, person(views()), NOW + DAY - 20 * MINUTE).member).toBe(true);
  });

  it("keeps out whoever added to the cart, until the add is 7 days old, while the views still count", () => {
    const who = person([...views(), track("Product Added", NOW - 6 * DAY - 12 * HOUR)]);
    const entered = flipsAt(browsers, who, NOW, { member: false, nextChangeAt: NOW + 12 * HOUR });
    expect(entered.nextChangeAt).toBe(NOW + DAY);
  });

  it("does not count views in another category", () => {
    expect(check(browsers, person(views().slice(1)), NOW)).toEqual({ member: false, nextChangeAt: null });
  });
});

const orderOf = (...productIds: string[]) => ({ products: productIds.map((product_id) => ({ product_id })) });

describe("first-time buyers of product Y with no second purchase in 30 days", () => {
  const firstTimers = segment({
    kind: "and",
    conditions: [
      { kind: "event", event: "Order Completed", count: { op: "equals", value: 1 } },
      {
        kind: "sequence",
        first: { event: "Order Completed", where: [{ property: "products[].product_id", op: "equals", value: "Y" }] },
        notFollowedBy: [{ event: "Order Completed", within: { days: 30 } }],
      },
    ],
  });

  it("admits a buyer of Y exactly 30 days after the purchase", () => {
    const who = person([track("Order Completed", NOW - 10 * DAY + 5, orderOf("Y", "W"))]);
    flipsAt(firstTimers, who, NOW, { member: false, nextChangeAt: NOW + 20 * DAY + 5 });
  });

  it("keeps out a second purchase, one of another product first, and a buyer of something else", () => {
    expect(check(firstTimers, person([track("Order Completed", NOW - 40 * DAY, orderOf("Y"))]), NOW).member).toBe(true);
    const twice = person([track("Order Completed", NOW - 40 * DAY, orderOf("Y")), track("Order Completed", NOW - 35 * DAY, orderOf("W"))]);
    expect(check(firstTimers, twice, NOW)).toEqual({ member: false, nextChangeAt: null });
    const otherFirst = person([track("Order Completed", NOW - 80 * DAY, orderOf("W")), track("Order Completed", NOW - 40 * DAY, orderOf("Y"))]);
    expect(check(firstTimers, otherFirst, NOW).member).toBe(false);
    expect(check(firstTimers, person([track("Order Completed", NOW - 40 * DAY, orderOf("W"))]), NOW).member).toBe(false);
  });
});

describe("abandoned a cart and browsed a related category within 2 hours", () => {
  const abandoners = segment({
    kind: "sequence",
    first: { event: "Product Added" },
    window: { within: { days: 7 } },
    followedBy: [{ event: "Product List Viewed", within: { hours: 2 }, join: { first: "related_categories[]", step: "category" } }],
    notFollowedBy: [{ event: "Order Completed", within: { hours: 1 } }],
  });
  const added = (at: number) => track("Product Added", at, { product_id: "boot-1", category: "shoes", related_categories: ["socks", "laces"] });

  it("admits once the hour to check out has passed, and lets go when the cart add leaves the 7-day window", () => {
    const who = person([added(NOW - 90 * MINUTE), track("Product List Viewed", NOW - HOUR, { category: "socks" })]);
    // The add rounds up to NOW − 1h; it leaves the window 7 days later.
    flipsAt(abandoners, who, NOW, { member: true, nextChangeAt: NOW + 7 * DAY - HOUR });
  });

  it("waits out the checkout hour to the millisecond", () => {
    const who = person([added(NOW - 30 * MINUTE), track("Product List Viewed", NOW - 10 * MINUTE, { category: "laces" })]);
    flipsAt(abandoners, who, NOW, { member: false, nextChangeAt: NOW + 30 * MINUTE });
  });

  it("keeps out a checkout within the hour, an unrelated category, and browsing more than 2 hours later (2 hours exactly is in time)", () => {
    const bought = person([added(NOW - 3 * HOUR), track("Product List Viewed", NOW - 2 * HOUR, { category: "socks" }), track("Order Completed", NOW - 2 * HOUR - 10 * MINUTE)]);
    expect(check(abandoners, bought, NOW)).toEqual({ member: false, nextChangeAt: null });
    const unrelated = person([added(NOW - 3 * HOUR), track("Product List Viewed", NOW - 2 * HOUR, { category: "shoes" })]);
    expect(check(abandoners, unrelated, NOW).member).toBe(false);
    const late = person([added(NOW - 5 * HOUR), track("Product List Viewed", NOW - 3 * HOUR + 1, { category: "socks" })]);
    expect(check(abandoners, late, NOW).member).toBe(false);
    const justInTime = person([added(NOW - 5 * HOUR), track("Product List Viewed", NOW - 3 * HOUR, { category: "socks" })]);
    expect(check(abandoners, justInTime, NOW).member).toBe(true);
  });
});

describe("loyal: 3+ purchases, lifetime value above the workspace average, last purchase 60–90 days ago", () => {
  const loyal = segment({
    kind: "and",
    conditions: [
      { kind: "event", event: "Order Completed", count: { op: "gte", value: 3 } },
      { kind: "compare", left: { trait: "lifetime_value" }, op: "gt", right: { statistic: "average", of: { trait: "lifetime_value" } } },
      { kind: "event", event: "Order Completed", window: { within: { days: 90 }, notWithin: { days: 60 } } },
      { kind: "event", event: "Order Completed", window: { within: { days: 60 } }, count: { op: "equals", value: 0 } },
    ],
  });
  const statistics = { "average(traits.lifetime_value)": 300 };
  const orders = (...daysAgo: number[]) => daysAgo.map((days) => track("Order Completed", NOW - days * DAY));

  it("names the statistic it needs", () => {
    expect([...requiredStatistics(loyal).keys()]).toEqual(["average(traits.lifetime_value)"]);
  });

  it("admits while the last purchase is 60 to 90 days old", () => {
    const who = person(orders(200, 120, 70), { traits: { lifetime_value: 450 }, statistics });
    flipsAt(loyal, who, NOW, { member: true, nextChangeAt: NOW + 20 * DAY });
  });

  it("admits a recent buyer once the last purchase turns 60 days old, and lets go at 90", () => {
    const who = person(orders(200, 100, 50), { traits: { lifetime_value: 450 }, statistics });
    const entered = flipsAt(loyal, who, NOW, { member: false, nextChangeAt: NOW + 10 * DAY });
    expect(entered.nextChangeAt).toBe(NOW + 40 * DAY);
  });

  it("keeps out a value at or below the average, fewer purchases, and a workspace with no average yet", () => {
    expect(check(loyal, person(orders(200, 120, 70), { traits: { lifetime_value: 300 }, statistics }), NOW).member).toBe(false);
    expect(check(loyal, person(orders(120, 70), { traits: { lifetime_value: 450 }, statistics }), NOW).member).toBe(false);
    expect(check(loyal, person(orders(200, 120, 70), { traits: { lifetime_value: 450 } }), NOW).member).toBe(false);
  });
});

describe("replenishment: bought consumable X and 80 % of its repurchase cycle has passed", () => {
  const boughtX = { event: "Order Completed", where: [{ property: "products[].product_id", op: "equals", value: "X" }] };
  const dueFromProduct = segment({ kind: "since_last", ...boughtX, atLeast: { property: "products[].replenish_days", unit: "days", times: 0.8, otherwise: { days: 30 } } });
  const dueFromConstant = segment({ kind: "since_last", ...boughtX, atLeast: { days: 30, times: 0.8 } });
  const order = (at: number, replenish_days?: number) => track("Order Completed", at, { products: [{ product_id: "X", ...(replenish_days ? { replenish_days } : {}) }] });

  it("admits at 80 % of the product's own cycle after the last purchase", () => {
    flipsAt(dueFromProduct, person([order(NOW - 20 * DAY, 30)]), NOW, { member: false, nextChangeAt: NOW + 4 * DAY });
    expect(check(dueFromProduct, person([order(NOW - 20 * DAY, 10)]), NOW)).toEqual({ member: true, nextChangeAt: null });
  });

  it("falls back to the constant cycle, and a repurchase starts the cycle again", () => {
    flipsAt(dueFromProduct, person([order(NOW - 20 * DAY)]), NOW, { member: false, nextChangeAt: NOW + 4 * DAY });
    flipsAt(dueFromConstant, person([order(NOW - 30 * DAY), order(NOW - DAY)]), NOW, { member: false, nextChangeAt: NOW + 23 * DAY });
  });

  it("keeps out whoever never bought X", () => {
    expect(check(dueFromConstant, person([track("Order Completed", NOW - 90 * DAY, orderOf("Z"))]), NOW)).toEqual({ member: false, nextChangeAt: null });
  });
});

describe("cross-sell: bought Z, viewed accessory Y in the last 14 days, has not bought Y", () => {
  const crossSell = segment({
    kind: "and",
    conditions: [
      { kind: "event", event: "Order Completed", where: [{ property: "products[].product_id", op: "equals", value: "Z" }] },
      { kind: "event", event: "Product Viewed", where: [{ property: "product_id", op: "equals", value: "Y" }], window: { within: { days: 14 } } },
      { kind: "not", condition: { kind: "event", event: "Order Completed", where: [{ property: "products[].product_id", op: "equals", value: "Y" }] } },
    ],
  });

  it("admits until the accessory view is 14 days old", () => {
    const who = person([track("Order Completed", NOW - 30 * DAY, orderOf("Z")), track("Product Viewed", NOW - 13 * DAY - 23 * HOUR - 30 * MINUTE, { product_id: "Y" })]);
    flipsAt(crossSell, who, NOW, { member: true, nextChangeAt: NOW + HOUR });
  });

  it("keeps out whoever bought Y, even in an order with other products", () => {
    const who = person([track("Order Completed", NOW - 30 * DAY, orderOf("Z")), track("Product Viewed", NOW - DAY, { product_id: "Y" }), track("Order Completed", NOW - HOUR, orderOf("Q", "Y"))]);
    expect(check(crossSell, who, NOW)).toEqual({ member: false, nextChangeAt: null });
    expect(check(crossSell, person([track("Product Viewed", NOW - DAY, { product_id: "Y" })]), NOW).member).toBe(false);
  });
});
