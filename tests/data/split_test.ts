import { deepEqual, equal, notDeepEqual, ok, throws } from "node:assert/strict";
import {
  classCounts,
  type ImageSet,
  pixelsToFloat32,
  splitTrainVal,
  subset,
} from "../../data/dataset.ts";

function tinySet(count: number): ImageSet {
  // One 1x2 image per example whose pixels encode its index, so subsets can be checked.
  const images = new Uint8Array(count * 2);
  for (let i = 0; i < count; i++) {
    images[2 * i] = i & 255;
    images[2 * i + 1] = i >> 8;
  }
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
  return { images, labels, count, rows: 1, cols: 2 };
}

function checkRows(parent: ImageSet, part: ImageSet): void {
  for (let k = 0; k < part.count; k++) {
    const row = part.indices![k];
    equal(part.images[2 * k] | (part.images[2 * k + 1] << 8), row);
    equal(part.labels[k], parent.labels[row]);
  }
}

Deno.test("split: 48,000 / 12,000 by default, disjoint, covering, seeded", () => {
  const set = tinySet(60_000);
  const { train, val } = splitTrainVal(set, { seed: 42 });
  equal(train.count, 48_000);
  equal(val.count, 12_000);
  const seen = new Uint8Array(60_000);
  for (const part of [train, val]) for (const row of part.indices!) seen[row]++;
  ok(seen.every((times) => times === 1), "every image in exactly one part");
  checkRows(set, train);
  checkRows(set, val);
  deepEqual(splitTrainVal(set, { seed: 42 }).val.indices, val.indices, "same seed, same split");
  notDeepEqual(splitTrainVal(set, { seed: 43 }).val.indices, val.indices);
  const counts = classCounts(val.labels);
  ok(counts.every((n) => n > 1000 && n < 1400), `a random split is roughly balanced: ${counts}`);
});

Deno.test("split: swap reproduces the notebook (train 12,000, validate 48,000)", () => {
  const set = tinySet(60_000);
  const normal = splitTrainVal(set, { seed: 7 });
  const swapped = splitTrainVal(set, { seed: 7, swap: true });
  equal(swapped.train.count, 12_000);
  equal(swapped.val.count, 48_000);
  deepEqual(swapped.train.indices, normal.val.indices);
  deepEqual(swapped.val.indices, normal.train.indices);
});

Deno.test("split: other fractions, and bad input", () => {
  const set = tinySet(10);
  equal(splitTrainVal(set, { valFraction: 0.25 }).val.count, 3); // round(2.5) = 3
  equal(splitTrainVal(set, { valFraction: 0 }).val.count, 0);
  equal(splitTrainVal(set, { valFraction: 1 }).train.count, 0);
  throws(() => splitTrainVal(set, { valFraction: 1.5 }), RangeError);
  throws(() => subset(set, Int32Array.of(10)), RangeError);
});

Deno.test("pixels scale to [0, 1] as value / 255", () => {
  deepEqual(Array.from(pixelsToFloat32(Uint8Array.of(0, 51, 255))), [0, Math.fround(0.2), 1]);
});
