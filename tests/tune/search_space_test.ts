/** Search-space sampling: bounds, distributions, grid counts and order, reproducibility. */

import assert from "node:assert/strict";
import { Rng } from "../../nn/random.ts";
import {
  choice,
  domainFromJSON,
  gridSearch,
  loguniform,
  qrandint,
  randint,
  uniform,
} from "../../train/tune/search_space.ts";
import { countConfigs, generateConfigs } from "../../train/tune/variants.ts";

const N = 30_000;

function histogram(values: number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

/** Each key's share is within `tolerance` of 1/k (k keys). */
function assertUniformCounts(counts: Map<number, number>, keys: number[], tolerance = 0.02): void {
  assert.deepEqual([...counts.keys()].sort((a, b) => a - b), keys);
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  for (const key of keys) {
    const share = counts.get(key)! / total;
    assert.ok(Math.abs(share - 1 / keys.length) < tolerance, `${key}: share ${share}`);
  }
}

Deno.test("loguniform stays within bounds and is uniform in log space", () => {
  const rng = new Rng(1), domain = loguniform(1e-4, 1e-1);
  const values = Array.from({ length: N }, () => domain.sample(rng));
  assert.ok(values.every((v) => v >= 1e-4 && v <= 1e-1));
  const logs = values.map(Math.log10);
  const mean = logs.reduce((a, b) => a + b, 0) / N;
  assert.ok(Math.abs(mean - -2.5) < 0.02, `mean log10 ${mean}`);
  // Each decade holds a third of the draws (a linear uniform would put 90% in the last one).
  const decades = histogram(logs.map((l) => Math.min(2, Math.floor(l + 4))));
  assertUniformCounts(decades, [0, 1, 2]);
  // Ten equal bins in log space: chi-square with 9 degrees of freedom, far below 30 (p ≈ 0.0004).
  const bins = histogram(logs.map((l) => Math.min(9, Math.floor((l + 4) / 3 * 10))));
  const expected = N / 10;
  const chi2 = [...bins.values()].reduce((a, c) => a + (c - expected) ** 2 / expected, 0);
  assert.ok(chi2 < 30, `chi2 ${chi2}`);
});

Deno.test("uniform is within [lower, upper) with the right mean", () => {
  const rng = new Rng(2), domain = uniform(-3, 5);
  const values = Array.from({ length: N }, () => domain.sample(rng));
  assert.ok(values.every((v) => v >= -3 && v < 5));
  const mean = values.reduce((a, b) => a + b, 0) / N;
  assert.ok(Math.abs(mean - 1) < 0.05, `mean ${mean}`);
});

Deno.test("randint excludes its upper bound; qrandint includes it, uniformly over multiples of q", () => {
  const rng = new Rng(3);
  const draw = (domain: { sample(r: Rng): number }) =>
    histogram(Array.from({ length: N }, () => domain.sample(rng)));
  assertUniformCounts(draw(randint(0, 5)), [0, 1, 2, 3, 4]);
  assertUniformCounts(draw(qrandint(1, 5)), [1, 2, 3, 4, 5]);
  assertUniformCounts(draw(qrandint(0, 10, { q: 5 })), [0, 5, 10]);
  // Ray's docstring example: multiples of 3 in [-21, 12], both ends included.
  const keys = Array.from({ length: 12 }, (_, i) => -21 + 3 * i);
  assertUniformCounts(draw(qrandint(-21, 12, { q: 3 })), keys, 0.01);
  // Bounds off the grid: multiples of 4 within [1, 10] are 4 and 8.
  assertUniformCounts(draw(qrandint(1, 10, { q: 4 })), [4, 8]);
  assertUniformCounts(draw(qrandint(1, 4, { q: 3 })), [3], 1e-9);
  assert.throws(() => qrandint(1, 2, { q: 3 }), /no multiple/);
  assert.throws(() => randint(3, 3), /lower < upper/);
  assert.throws(() => randint(0.5, 3), /not an integer/);
  assert.throws(() => loguniform(0, 1), /> 0/);
});

Deno.test("choice picks each value equally often", () => {
  const rng = new Rng(4), domain = choice([64, 128, 256]);
  assertUniformCounts(
    histogram(Array.from({ length: N }, () => domain.sample(rng) as number)),
    [64, 128, 256],
  );
});

Deno.test("gridSearch: cross product, first grid key fastest, repeated numSamples times", () => {
  const space = { b: gridSearch(["x", "y"]), a: gridSearch([1, 2, 3]), lr: uniform(0, 1), k: 7 };
  assert.equal(countConfigs(space, 4), 24);
  const configs = generateConfigs(space, { numSamples: 4, seed: 9 });
  assert.equal(configs.length, 24);
  // Grid keys are ordered by path ("a" < "b"), and the first varies fastest, as in Ray.
  const one = [[1, "x"], [2, "x"], [3, "x"], [1, "y"], [2, "y"], [3, "y"]];
  assert.deepEqual(configs.map((c) => [c.a, c.b]), [...one, ...one, ...one, ...one]);
  assert.ok(configs.every((c) => c.k === 7));
  // Random keys are drawn afresh for every grid point.
  assert.equal(new Set(configs.map((c) => c.lr)).size, 24);
  assert.deepEqual(Object.keys(configs[0]), ["b", "a", "lr", "k"]);
});

Deno.test("the spec's search space: 27 samples of three choices, reproducible from the seed", () => {
  const space = {
    l1: choice([64, 128, 256]),
    lr: choice([1e-4, 1e-3, 1e-2]),
    batch_size: choice([32, 64, 128]),
  };
  const a = generateConfigs(space, { numSamples: 27, seed: 42 });
  const b = generateConfigs(space, { numSamples: 27, seed: 42 });
  const c = generateConfigs(space, { numSamples: 27, seed: 43 });
  assert.equal(a.length, 27);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  for (const config of a) {
    assert.ok([64, 128, 256].includes(config.l1 as number));
    assert.ok([1e-4, 1e-3, 1e-2].includes(config.lr as number));
    assert.ok([32, 64, 128].includes(config.batch_size as number));
  }
});

Deno.test("nested spaces and constants are resolved in place; the space is not modified", () => {
  const space = {
    model: { l1: choice([1, 2]), layers: [randint(0, 3), "relu"] },
    optimizer: "adam",
    grid: gridSearch([{ batch: 32 }, { batch: 64 }]),
  };
  const configs = generateConfigs(space, { numSamples: 2, seed: 1 });
  assert.equal(configs.length, 4);
  for (const config of configs) {
    const model = config.model as { l1: number; layers: [number, string] };
    assert.ok([1, 2].includes(model.l1));
    assert.ok(model.layers[0] >= 0 && model.layers[0] < 3 && model.layers[1] === "relu");
    assert.equal(config.optimizer, "adam");
  }
  assert.deepEqual(configs.map((c) => c.grid), [{ batch: 32 }, { batch: 64 }, { batch: 32 }, {
    batch: 64,
  }]);
  assert.ok(space.model.l1 instanceof Object && "values" in space.model.l1);
});

Deno.test("domains round-trip through JSON; bad spaces are rejected", () => {
  for (const domain of [choice([1, "a"]), gridSearch([1]), uniform(0, 1), loguniform(1, 2)]) {
    assert.deepEqual(domainFromJSON(domain.toJSON()).toJSON(), domain.toJSON());
  }
  assert.deepEqual(JSON.parse(JSON.stringify({ x: qrandint(0, 9, { q: 3 }) })), {
    x: { $domain: "qrandint", lower: 0, upper: 9, q: 3 },
  });
  assert.throws(() => generateConfigs({ f: (() => 1) as unknown as number }), /not JSON/);
  assert.throws(() => generateConfigs({ x: 1 }, { numSamples: 0 }), /numSamples/);
  assert.deepEqual(generateConfigs({ x: 1 }, { numSamples: 2 }), [{ x: 1 }, { x: 1 }]);
});
