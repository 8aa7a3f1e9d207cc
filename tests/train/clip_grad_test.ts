/**
 * `clipGradNorm` and `clipGradValue` against their float64 references and PyTorch 1.13's
 * `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_`: norm types 2, 1, 3 and inf, awkward
 * shapes (a 0-d gradient, sizes not multiples of 4, one large enough for textures and several
 * partials), NaN and infinity, no readback.
 */
import assert from "node:assert/strict";
import { clipGradNormReference, clipGradValueReference } from "./reference/clip_grad.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { streamStats } from "../../nn/gpu/stream.ts";
import { SGD } from "../../train/optim/sgd.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { clipGradNorm, clipGradValue } from "../../train/optim/clip_grad.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";

await gpuReady();
const noTorch = skipWithoutTorch("clip_grad_test (the PyTorch comparisons)");

/** Parameter shapes: odd sizes, 0-d, size 1, and one large (textures, several partials). */
const SHAPES = [[7], [], [3, 5], [1], [97, 89], [2, 301]];
/** Parameter 3 has no gradient. */
const NO_GRAD = 3;

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function gradData(i: number, seed: number, scale: number): Float32Array {
  return Float32Array.from(randomArray(size(SHAPES[i]), seed + i, -scale, scale));
}

/** Parameters whose gradients are `grads` (null: none). */
function withGrads(grads: (Float32Array | null)[]): Tensor[] {
  return grads.map((data, i) => {
    const p = tensor(new Float32Array(size(SHAPES[i])), SHAPES[i], { requiresGrad: true });
    p.grad = data && tensor(data, SHAPES[i]);
    return p;
  });
}

function makeGrads(seed: number, scale: number): (Float32Array | null)[] {
  return SHAPES.map((_, i) => i === NO_GRAD ? null : gradData(i, seed, scale));
}

async function gradsOf(params: Tensor[]): Promise<(Float32Array | null)[]> {
  return await Promise.all(params.map((p) => p.grad ? p.grad.toArray() : null));
}

function dispose(params: Tensor[]): void {
  for (const p of params) {
    p.grad?.dispose();
    p.dispose();
  }
}

const NORM_TYPES = [2, 1, 3, Infinity];

for (const normType of NORM_TYPES) {
  for (
    const [label, maxNorm, scale] of [["clipped", 0.5, 1], ["not clipped", 1e6, 0.01]] as const
  ) {
    Deno.test(`clipGradNorm (norm ${normType}, ${label}) matches the reference, nothing read back`, async () => {
      const data = makeGrads(10, scale);
      const params = withGrads(data);
      const before = streamStats();
      const norm = clipGradNorm(params, maxNorm, { normType });
      const after = streamStats();
      assert.equal(after.readbacks, before.readbacks, "no readback");
      const withGrad = data.filter((g) => g !== null).length;
      assert.equal(after.dispatches - before.dispatches, 2 * withGrad + 1);
      assert.deepEqual(norm.shape, []);
      const expected = clipGradNormReference(
        data.filter((g) => g !== null),
        maxNorm,
        normType,
      );
      assertClose(await norm.toArray(), [expected.norm], { atol: 0, rtol: 2e-6 }, "norm");
      const clipped = await gradsOf(params);
      let k = 0;
      for (const [i, grad] of clipped.entries()) {
        if (i === NO_GRAD) {
          assert.equal(grad, null);
          continue;
        }
        assertClose(grad!, expected.grads[k++], { atol: 1e-7, rtol: 2e-6 }, `grad ${i}`);
      }
      if (label === "not clipped") {
        assert.deepEqual(clipped, data, "a factor of 1 leaves the gradients exactly");
      }
      norm.dispose();
      dispose(params);
    });
  }
}

Deno.test("clipGradNorm: a NaN or infinite gradient propagates as PyTorch's does", async () => {
  for (const normType of NORM_TYPES) {
    // NaN: the norm is NaN and so is every clipped gradient.
    const data = makeGrads(20, 1);
    data[2]![4] = NaN;
    let params = withGrads(data);
    let norm = clipGradNorm(params, 1, { normType });
    assert.ok(Number.isNaN((await norm.toArray())[0]), `norm ${normType} of a NaN`);
    for (const grad of await gradsOf(params)) {
      if (grad) assert.ok(grad.every(Number.isNaN), `norm ${normType}: every gradient is NaN`);
    }
    norm.dispose();
    dispose(params);
    // Infinity: the norm is infinite, the factor 0: finite values become 0, infinite ones NaN.
    const inf = makeGrads(21, 1);
    inf[0]![1] = -Infinity;
    params = withGrads(inf);
    norm = clipGradNorm(params, 1, { normType });
    const expected = clipGradNormReference(inf.filter((g) => g !== null), 1, normType);
    assert.equal((await norm.toArray())[0], Infinity);
    const got = (await gradsOf(params)).filter((g) => g !== null);
    for (const [k, grad] of got.entries()) {
      assertClose(grad!, expected.grads[k], { atol: 0, rtol: 0, equalNan: true });
    }
    norm.dispose();
    dispose(params);
  }
});

Deno.test("clipGradValue clamps in place, keeps NaN, skips missing gradients", async () => {
  const data = makeGrads(30, 3);
  data[0]![2] = NaN;
  data[0]![3] = Infinity;
  data[1]![0] = -Infinity;
  const params = withGrads(data);
  const before = streamStats();
  clipGradValue(params, 1.5);
  const after = streamStats();
  assert.equal(after.readbacks, before.readbacks);
  assert.equal(after.dispatches - before.dispatches, SHAPES.length - 1);
  const expected = clipGradValueReference(data.filter((g) => g !== null), 1.5);
  const got = (await gradsOf(params)).filter((g) => g !== null);
  for (const [k, grad] of got.entries()) {
    assertClose(grad!, expected[k], { atol: 0, rtol: 0, equalNan: true }, `grad ${k}`);
  }
  dispose(params);
});

Deno.test("clipGradNorm and clipGradValue: a single tensor, no gradients, bad input", async () => {
  const p = tensor([0, 0], [2], { requiresGrad: true });
  p.grad = tensor([3, 4], [2]);
  const norm = clipGradNorm(p, 1);
  assertClose(await norm.toArray(), [5], { atol: 0, rtol: 1e-7 });
  assertClose(await p.grad.toArray(), [0.6, 0.8], { atol: 1e-6, rtol: 0 });
  clipGradValue(p, 0.7);
  assertClose(await p.grad.toArray(), [0.6, 0.7], { atol: 1e-6, rtol: 0 });
  norm.dispose();
  const q = tensor([1], [1], { requiresGrad: true });
  const zero = clipGradNorm([q], 1);
  assert.deepEqual(await zero.toArray(), new Float32Array([0]), "no gradient: norm 0");
  zero.dispose();
  assert.throws(() => clipGradNorm([p], -1), /clipGradNorm: maxNorm must be a number >= 0/);
  assert.throws(() => clipGradNorm([p], NaN), /maxNorm must be a number >= 0 .* got NaN/);
  assert.throws(
    () => clipGradNorm([p], 1, { normType: 0 }),
    /clipGradNorm: normType must be a number > 0, or Infinity \/ "inf" for the max norm, got 0/,
  );
  const inf = clipGradNorm([p], 1, { normType: "inf" });
  assertClose(await inf.toArray(), [0.7], { atol: 1e-6, rtol: 0 });
  inf.dispose();
  assert.throws(() => clipGradValue([p], -0.5), /clipGradValue: clipValue must be a number >= 0/);
  assert.throws(
    () => clipGradValue([p, 3 as unknown as Tensor], 1),
    /clipGradValue: parameter 1 is not a Tensor/,
  );
  p.grad.dispose();
  p.dispose();
  q.dispose();
});

for (const normType of [2, 1, Infinity]) {
  Deno.test({
    name: `clipGradNorm (norm ${normType}) matches torch.nn.utils.clip_grad_norm_`,
    ignore: noTorch,
    fn: async () => {
      const data = makeGrads(40, 1);
      const params = withGrads(data);
      const norm = clipGradNorm(params, 0.75, { normType });
      const answer = await askTorch<{ norm: number; grads: (number[] | null)[] }>("optim.py", {
        kind: "clip_norm",
        grads: data.map((g, i) => g && { shape: SHAPES[i], data: g }),
        max_norm: 0.75,
        norm_type: normType,
      });
      assertClose(await norm.toArray(), [answer.norm], { atol: 0, rtol: 1e-5 }, "norm");
      for (const [i, grad] of (await gradsOf(params)).entries()) {
        if (grad === null) assert.equal(answer.grads[i], null);
        else assertClose(grad, answer.grads[i]!, { atol: 1e-7, rtol: 1e-5 }, `grad ${i}`);
      }
      norm.dispose();
      dispose(params);
    },
  });
}

Deno.test({
  name: "clipGradValue matches torch.nn.utils.clip_grad_value_",
  ignore: noTorch,
  fn: async () => {
    const data = makeGrads(50, 2);
    const params = withGrads(data);
    clipGradValue(params, 0.9);
    const answer = await askTorch<{ grads: (number[] | null)[] }>("optim.py", {
      kind: "clip_value",
      grads: data.map((g, i) => g && { shape: SHAPES[i], data: g }),
      clip_value: 0.9,
    });
    for (const [i, grad] of (await gradsOf(params)).entries()) {
      if (grad === null) assert.equal(answer.grads[i], null);
      else assertClose(grad, answer.grads[i]!, { atol: 0, rtol: 0 }, `grad ${i}`);
    }
    dispose(params);
  },
});

Deno.test("clipped gradients reach the optimizer (texture mirrors refresh); no buffer leaks", async () => {
  const shape = [97, 89]; // large enough for the update kernel to read textures
  const start = Float32Array.from(randomArray(size(shape), 60));
  const grad = Float32Array.from(randomArray(size(shape), 61));
  const p = tensor(start, shape, { requiresGrad: true });
  p.grad = tensor(grad, shape);
  const sgd = new SGD([p], { lr: 0.5 });
  const live = memoryStats().liveBuffers;
  for (let k = 0; k < 2; k++) {
    const norm = clipGradNorm([p], 1);
    norm.dispose();
    clipGradValue([p], 0.001);
  }
  assert.equal(memoryStats().liveBuffers, live, "clipping keeps no buffer");
  sgd.step(); // reads the clipped gradient (through a texture under the software policy)
  const { grads: [clipped] } = clipGradNormReference([grad], 1);
  const expected = clipGradValueReference([clipGradNormReference([clipped], 1).grads[0]], 0.001)[0];
  assertClose(await p.grad.toArray(), expected, { atol: 1e-7, rtol: 1e-5 }, "grad");
  assertClose(
    await p.toArray(),
    Float64Array.from(start, (v, i) => v - 0.5 * expected[i]),
    { atol: 1e-6, rtol: 1e-5 },
    "param after the step",
  );
  sgd.zeroGrad();
  sgd.dispose();
  p.dispose();
});
