// Edge cases of tensors: empty tensors (a dimension of 0) work like PyTorch's or are refused by
// the op naming the shape; they never reach a 0-byte upload that panics Deno. Integer tensors
// refuse values they cannot hold, and seeds use all their bits.
import assert from "node:assert/strict";
import { DataLoader, GpuDataset } from "../../data/loader.ts";
import { add, relu } from "../../nn/ops/elementwise.ts";
import { linear, matmul } from "../../nn/ops/matmul.ts";
import { argmax, mean, sum } from "../../nn/ops/reduce.ts";
import { conv2d } from "../../nn/ops/conv2d.ts";
import { maxPool2d } from "../../nn/ops/max_pool.ts";
import { logSoftmax } from "../../nn/ops/softmax.ts";
import { kernel } from "../../nn/gpu/kernel.ts";
import { manualSeed } from "../../nn/modules/init.ts";
import { Rng } from "../../nn/random.ts";
import { dispatch } from "../../nn/gpu/stream.ts";
import {
  full,
  randUniform,
  type Tensor,
  tensor,
  type TensorOptions,
  zeros,
} from "../../nn/tensor.ts";
import { assertThrows } from "../assert.ts";
import { gpuReady } from "../testing.ts";

await gpuReady();

function filled(shape: number[], options: TensorOptions = {}): Tensor {
  const size = shape.reduce((product, dim) => product * dim, 1);
  return tensor(Float32Array.from({ length: size }, (_, i) => i + 1), shape, options);
}

/** Leaves NaN-filled buffers of the smallest size class in the pool, so unwritten outputs show. */
function dirtyPool(): void {
  const dirty = Array.from({ length: 8 }, () => full([64], NaN));
  for (const t of dirty) t.dispose();
}

Deno.test("empty tensors: creation, toArray and reshape of [0], [3, 0] and [0, 5]", async () => {
  for (const shape of [[0], [3, 0], [0, 5]]) {
    const t = tensor(new Float32Array(0), shape);
    assert.deepEqual(t.shape, shape);
    assert.equal(t.size, 0);
    assert.deepEqual([...await t.toArray()], []);
  }
  assert.deepEqual([...await tensor([], [0, 3], { dtype: "i32" }).toTypedArray()], []);
  assert.deepEqual(
    [...await tensor(new Uint8Array(0), [2, 0], { dtype: "u8" }).toTypedArray()],
    [],
  );
  const r = tensor(new Float32Array(0), [3, 0]).reshape([0, 7]);
  assert.deepEqual(r.shape, [0, 7]);
  assert.deepEqual([...await r.toArray()], []);
  assert.deepEqual([...await full([0, 5], 2).toArray()], []);
});

Deno.test("empty tensors: element-wise ops give empty tensors of the same shape", async () => {
  const a = tensor(new Float32Array(0), [3, 0]);
  const y = relu(add(a, a));
  assert.deepEqual(y.shape, [3, 0]);
  assert.deepEqual([...await y.toArray()], []);
});

Deno.test("empty tensors: sum is 0, mean is NaN, and the gradient is empty", async () => {
  dirtyPool();
  assert.equal(await sum(tensor(new Float32Array(0), [3, 0])).item(), 0);
  assert.ok(Number.isNaN(await mean(tensor(new Float32Array(0), [0, 5])).item()));
  const x = tensor(new Float32Array(0), [3, 0], { requiresGrad: true });
  sum(relu(x)).backward();
  assert.deepEqual(x.grad!.shape, [3, 0]);
});

Deno.test("empty tensors: matmul [0, 4]·[4, 3] is [0, 3]; [3, 0]·[0, 2] is zeros [3, 2]", async () => {
  dirtyPool();
  const rows = matmul(tensor(new Float32Array(0), [0, 4]), filled([4, 3]));
  assert.deepEqual(rows.shape, [0, 3]);
  assert.deepEqual([...await rows.toArray()], []);
  const inner = matmul(tensor(new Float32Array(0), [3, 0]), tensor(new Float32Array(0), [0, 2]));
  assert.deepEqual(inner.shape, [3, 2]);
  assert.deepEqual([...await inner.toArray()], [0, 0, 0, 0, 0, 0]);
  const withBias = linear(tensor(new Float32Array(0), [0, 4]), filled([3, 4]), filled([3]));
  assert.deepEqual(withBias.shape, [0, 3]);
  assert.deepEqual([
    ...await argmax(tensor(new Float32Array(0), [0, 10]), { dim: -1 }).toTypedArray(),
  ], []);
  assert.deepEqual(logSoftmax(tensor(new Float32Array(0), [0, 10])).shape, [0, 10]);
});

Deno.test("empty tensors: conv2d and maxPool2d refuse them naming the op and the shape", () => {
  assertThrows(
    () => conv2d(tensor(new Float32Array(0), [0, 1, 5, 5]), filled([2, 1, 3, 3])),
    /conv2d: empty tensors are not supported \(input \[0, 1, 5, 5\], weight \[2, 1, 3, 3\]\)/,
  );
  assertThrows(
    () => maxPool2d(tensor(new Float32Array(0), [0, 2, 4, 4]), { kernelSize: 2 }),
    /maxPool2d: empty tensors are not supported \(input \[0, 2, 4, 4\]\)/,
  );
});

Deno.test("i32 and u8 tensors refuse values they cannot hold, naming the value, index and range", async () => {
  assertThrows(
    () => tensor([300], [1], { dtype: "u8" }),
    /^tensor: value 300 at index 0 does not fit a u8 tensor, which holds integers from 0 to 255/,
  );
  assertThrows(() => tensor([0, 255, -1], [3], { dtype: "u8" }), /value -1 at index 2 .* u8/);
  assertThrows(
    () => tensor([1, 2 ** 31], [2], { dtype: "i32" }),
    /value 2147483648 at index 1 does not fit a i32 tensor, which holds integers from -2147483648 to 2147483647/,
  );
  assertThrows(() => tensor([0, 1.5], [2], { dtype: "i32" }), /value 1\.5 at index 1 .*fractions/);
  assertThrows(() => tensor([NaN], [1], { dtype: "i32" }), /value NaN at index 0/);
  assertThrows(() => tensor(Int32Array.of(256), [1], { dtype: "u8" }), /value 256 at index 0/);
  assertThrows(() => full([2], 2.5, { dtype: "i32" }), /^full: value 2\.5 does not fit a i32/);
  assertThrows(() => full([2], 2 ** 31, { dtype: "i32" }), /^full: value 2147483648/);
  const edges = tensor([-(2 ** 31), 2 ** 31 - 1], [2], { dtype: "i32" });
  assert.deepEqual([...await edges.toTypedArray()], [-(2 ** 31), 2 ** 31 - 1]);
  assert.deepEqual([...await tensor([0, 255], [2], { dtype: "u8" }).toTypedArray()], [0, 255]);
  assert.deepEqual([...await full([1], -7, { dtype: "i32" }).toTypedArray()], [-7]);
});

function firstWords(seed: number | bigint): number[] {
  const rng = new Rng(seed);
  return [rng.nextUint32(), rng.nextUint32(), rng.nextUint32()];
}

Deno.test("seeds use every bit: 0, 1, 2^32, 2^33, -1 and 2^64 - 2 give different sequences", () => {
  const seeds: (number | bigint)[] = [0, 1, 2 ** 32, 2 ** 32 + 1, 2 ** 33, -1, 2n ** 64n - 2n];
  const streams = seeds.map((seed) => firstWords(seed).join(","));
  assert.equal(new Set(streams).size, seeds.length, streams.join(" | "));
  // A negative seed counts as 2^64 + seed, as in torch.manual_seed.
  assert.deepEqual(firstWords(-1), firstWords(2n ** 64n - 1n));
  assert.deepEqual(firstWords(2 ** 40 + 3), firstWords(2n ** 40n + 3n));
  // Seeds below 2^32 keep the sequences they always had (results stay reproducible).
  assert.deepEqual(firstWords(0), [3809008728, 1133695204, 53579671]);
  assert.deepEqual(firstWords(2 ** 32 - 1), [835879718, 1921286648, 2356205009]);
});

Deno.test("seeds that are not integers, or lost bits as numbers, are refused", () => {
  for (const seed of [1.5, NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53)]) {
    assertThrows(() => new Rng(seed), /^Rng: invalid seed .*: a seed is an integer from -2\^63/);
  }
  assertThrows(() => new Rng(2n ** 64n), /^Rng: invalid seed 18446744073709551616/);
  assertThrows(() => new Rng(-(2n ** 63n) - 1n), /^Rng: invalid seed/);
  assertThrows(() => manualSeed(0.5), /^Rng: invalid seed 0\.5/);
  assertThrows(() => randUniform([2], { seed: 2 ** 60 }), /^Rng: invalid seed/);
});

Deno.test("DataLoader shuffles use every bit of the seed; seeds below 2^32 keep their orders", () => {
  const images = new Uint8Array(12 * 4), labels = new Uint8Array(12);
  const dataset = new GpuDataset({ images, labels, count: 12, rows: 2, cols: 2 });
  const order = (seed: number) =>
    [...new DataLoader(dataset, { batchSize: 4, seed }).epochOrder(1)].join(",");
  assert.equal(order(0), "0,7,10,5,8,1,9,3,2,11,4,6");
  assert.equal(order(5), "4,11,8,6,1,10,2,3,7,9,0,5");
  assert.notEqual(order(2 ** 32), order(0));
  assert.notEqual(order(2 ** 32 + 5), order(5));
  assert.throws(
    () => new DataLoader(dataset, { batchSize: 4, seed: 0.5 }),
    /DataLoader: seed 0\.5 is not an integer/,
  );
  dataset.dispose();
});

Deno.test("dispatch refuses workgroup counts that are not integers >= 0, naming the kernel", () => {
  const code = "@group(0) @binding(0) var<storage, read_write> out: array<f32>;\n" +
    "@compute @workgroup_size(1) fn main() { out[0] = 1.0; }";
  const noop = kernel({ name: "edge_noop", code, bindings: ["read_write"] });
  const out = zeros([1]);
  for (const groups of [[NaN], [Infinity], [1.5], [-1], [2, NaN]]) {
    assertThrows(
      () => dispatch(noop, [out.buffer], groups),
      /^dispatch edge_noop: workgroup counts must be integers >= 0, got \[/,
    );
  }
  dispatch(noop, [out.buffer], [0]); // nothing to compute: encodes nothing
  out.dispose();
});
