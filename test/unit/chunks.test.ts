import { describe, expect, it } from "vitest";
import { chunkBySize } from "../../workers/lib/chunks";

describe("chunkBySize", () => {
  it("keeps order and closes a chunk before it would pass the size or the count", () => {
    expect(chunkBySize([3, 3, 3, 1, 5], (n) => n, 6)).toEqual([[3, 3], [3, 1], [5]]);
    expect(chunkBySize([1, 1, 1, 1, 1], (n) => n, 100, 2)).toEqual([[1, 1], [1, 1], [1]]);
  });

  it("gives an item larger than the limit a chunk of its own, and nothing for no items", () => {
    expect(chunkBySize([2, 10, 2], (n) => n, 4)).toEqual([[2], [10], [2]]);
    expect(chunkBySize([], (n: number) => n, 4)).toEqual([]);
  });
});
