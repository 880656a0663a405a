import { describe, expect, it } from "vitest";
import { DAY, HOUR, MINUTE, NOW, page, track, trait, value } from "./helpers";

const orders = () => [
  track("Order Completed", NOW - 10 * DAY, { revenue: 0.1, products: [{ category: "shoes", price: 10 }, { category: "socks", price: 2 }] }),
  track("Order Completed", NOW - 5 * DAY - 30 * MINUTE, { revenue: 0.2, products: [{ category: "shoes", price: 30 }] }),
  track("Order Completed", NOW - DAY, { revenue: "12.5", products: [{ category: "hats", price: 5 }] }),
  track("Order Completed", NOW - 2 * HOUR, { products: [{ category: "socks", price: 3 }] }),
  track("Product Viewed", NOW - HOUR, { revenue: 99, products: [{ category: "gloves", price: 99 }] }),
];

const ever = (fn: string, property?: string, extra: Record<string, unknown> = {}) => trait({ function: fn, event: "Order Completed", ...(property ? { property } : {}), ...extra });
const lastWeek = (fn: string, property?: string) => ever(fn, property, { window: { within: { days: 7 } } });

describe("computed traits over all time", () => {
  it("counts matching events and never changes on its own", () => {
    expect(value(ever("count"), orders(), NOW)).toEqual({ value: 4, nextChangeAt: null });
  });

  it("sums exactly, reads numeric strings, and skips events without the number", () => {
    expect(value(ever("sum", "revenue"), orders(), NOW).value).toBe(12.8);
    // 0.1 + 0.2 is 0.30000000000000004 in floating point; sums are exact in millionths.
    expect(value(ever("sum", "revenue", { where: [{ property: "revenue", op: "lt", value: 1 }] }), orders(), NOW).value).toBe(0.3);
    expect(value(ever("average", "revenue"), orders(), NOW).value).toBe(12.8 / 3);
  });

  it("takes min and max over every element of an array path", () => {
    expect(value(ever("min", "products[].price"), orders(), NOW).value).toBe(2);
    expect(value(ever("max", "products[].price"), orders(), NOW).value).toBe(30);
  });

  it("breaks a most-frequent tie by the smaller JSON value", () => {
    expect(value(ever("most_frequent", "products[].category"), orders(), NOW).value).toBe("shoes");
  });

  it("reports first and last by timestamp: one value for a plain path, the list for an array path", () => {
    expect(value(ever("first", "products[].category"), orders(), NOW).value).toEqual(["shoes", "socks"]);
    expect(value(ever("first", "revenue"), orders(), NOW).value).toBe(0.1);
    expect(value(ever("last", "revenue"), orders(), NOW).value).toBe("12.5");
  });

  it("lists unique values newest first, up to the limit, and counts them", () => {
    expect(value(ever("unique_list", "products[].category"), orders(), NOW).value).toEqual(["socks", "hats", "shoes"]);
    expect(value(ever("unique_list", "products[].category", { limit: 2 }), orders(), NOW).value).toEqual(["socks", "hats"]);
    expect(value(ever("unique_count", "products[].category"), orders(), NOW).value).toBe(3);
  });

  it("gives each function's empty value when nothing matches", () => {
    const none = orders().slice(4);
    expect([ever("count"), ever("sum", "revenue"), ever("average", "revenue"), ever("max", "revenue"), ever("unique_list", "revenue"), ever("unique_count", "revenue"), ever("last", "revenue")].map((definition) => value(definition, none, NOW).value)).toEqual([0, 0, null, null, [], 0, null]);
  });

  it("matches pages and screens by name, and filters by type", () => {
    const events = [page("Pricing", NOW - DAY), page("Pricing", NOW - HOUR), track("Pricing", NOW - HOUR), page("Home", NOW - HOUR)];
    expect(value(trait({ function: "count", event: "Pricing", type: ["page"] }), events, NOW).value).toBe(2);
    expect(value(trait({ function: "count", event: "Pricing" }), events, NOW).value).toBe(3);
  });
});

describe("computed traits over the last N units", () => {
  // Day windows round event time up to the hour: the order at NOW − 5d − 30min leaves at NOW + 2d.
  it("counts and sums until each event leaves the window", () => {
    expect(value(lastWeek("count"), orders(), NOW)).toEqual({ value: 3, nextChangeAt: NOW + 2 * DAY });
    expect(value(lastWeek("count"), orders(), NOW + 2 * DAY)).toEqual({ value: 2, nextChangeAt: NOW + 6 * DAY });
    expect(value(lastWeek("sum", "revenue"), orders(), NOW)).toEqual({ value: 12.7, nextChangeAt: NOW + 2 * DAY });
    expect(value(lastWeek("average", "revenue"), orders(), NOW + 2 * DAY)).toEqual({ value: 12.5, nextChangeAt: NOW + 6 * DAY });
  });

  it("reports the next change of a min or max only when the extreme itself leaves", () => {
    expect(value(lastWeek("max", "products[].price"), orders(), NOW)).toEqual({ value: 30, nextChangeAt: NOW + 2 * DAY });
    expect(value(lastWeek("min", "products[].price"), orders(), NOW)).toEqual({ value: 3, nextChangeAt: NOW + 7 * DAY - 2 * HOUR });
    expect(value(lastWeek("min", "products[].price"), orders(), NOW + 7 * DAY - 2 * HOUR)).toEqual({ value: null, nextChangeAt: null });
  });

  it("moves first, last, most frequent and unique values as events leave", () => {
    expect(value(lastWeek("first", "products[].category"), orders(), NOW)).toEqual({ value: ["shoes"], nextChangeAt: NOW + 2 * DAY });
    expect(value(lastWeek("first", "products[].category"), orders(), NOW + 2 * DAY).value).toEqual(["hats"]);
    expect(value(lastWeek("last", "revenue"), orders(), NOW)).toEqual({ value: "12.5", nextChangeAt: NOW + 6 * DAY });
    // shoes, hats and socks once each: hats wins the tie, and still wins once shoes leaves.
    expect(value(lastWeek("most_frequent", "products[].category"), orders(), NOW)).toEqual({ value: "hats", nextChangeAt: NOW + 6 * DAY });
    expect(value(lastWeek("unique_count", "products[].category"), orders(), NOW)).toEqual({ value: 3, nextChangeAt: NOW + 2 * DAY });
    expect(value(lastWeek("unique_list", "products[].category"), orders(), NOW + 2 * DAY)).toEqual({ value: ["socks", "hats"], nextChangeAt: NOW + 6 * DAY });
  });

  it("rounds to the minute when a window has hours or minutes", () => {
    const window36h = ever("average", "revenue", { window: { within: { hours: 36 } } });
    expect(value(window36h, orders(), NOW)).toEqual({ value: 12.5, nextChangeAt: NOW + 12 * HOUR });
    const viewed = trait({ function: "count", event: "Product Viewed", window: { within: { minutes: 90 } } });
    // Viewed at NOW − 60.5 min, which rounds up to NOW − 60 min: it leaves 90 minutes after that.
    expect(value(viewed, [track("Product Viewed", NOW - HOUR - 30_000)], NOW)).toEqual({ value: 1, nextChangeAt: NOW + 30 * MINUTE });
  });
});
