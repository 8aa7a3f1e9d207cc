import { linearReluDropout } from "../../nn/ops/linear_relu_dropout.ts";
import { dropout, dropoutMask } from "../../nn/ops/dropout.ts";
import { relu } from "../../nn/ops/elementwise.ts";
import { linear } from "../../nn/ops/matmul.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { streamStats } from "../../nn/gpu/stream.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import { linearBackwardReference, linearReference } from "./reference/matmul.ts";
import { assert } from "../assert.ts";
import { assertSameValues, assertSteadyMemory, gpuReady, randomArray } from "../testing.ts";
import { testOp } from "./op_helper.ts";

await gpuReady();

/** Kept elements' factor: 1 / (1 - p) where kept, 0 where dropped. */
function maskScale(size: number, p: number, seed: number): Float64Array {
  const mask = dropoutMask(size, p, seed);
  return Float64Array.from(mask, (kept) => kept / (1 - p));
}

// Awkward shapes: odd everything, a tail of K (in % 4 != 0), fewer rows than a register block,
// the MLP's layers at batch 32, and a weight gradient whose lanes go on its rows ([64, 200]).
const SHAPES = [[5, 7, 13], [33, 50, 17], [1, 3, 1], [9, 200, 64], [32, 256, 128], [32, 784, 256]];

for (const [batch, inFeatures, outFeatures] of SHAPES) {
  const sizes = { batch, inFeatures, outFeatures };
  const p = 0.3, seed = 977;
  const scale = maskScale(batch * outFeatures, p, seed);
  Deno.test(`linearReluDropout ${batch}x${inFeatures}->${outFeatures} against float64`, async () => {
    await testOp({
      name: `linearReluDropout ${batch}x${inFeatures}->${outFeatures}`,
      inputs: [[batch, inFeatures], [outFeatures, inFeatures], [outFeatures]],
      gpu: ([x, w, b]) =>
        linearReluDropout(x, w, { bias: b, dropout: { p, training: true, seed } }),
      reference: ([x, w, b]) =>
        linearReference(x, w, b, sizes).map((z, i) => Math.max(z, 0) * scale[i]),
      backward: ([x, w, b], grad) => {
        const z = linearReference(x, w, b, sizes);
        const sumsGrad = grad.map((g, i) => z[i] > 0 ? g * scale[i] : 0);
        return linearBackwardReference(x, w, sumsGrad, sizes);
      },
      outputShape: [batch, outFeatures],
      forwardTolerance: { atol: 1e-4, rtol: 1e-4 },
      gradTolerance: { atol: 1e-4, rtol: 1e-4 },
      finiteDifferenceLimit: batch * inFeatures * outFeatures <= 5_000 ? Infinity : 0,
    });
  });
}

const WHAT = ["output", "x gradient", "weight gradient", "bias gradient"];

/** Values and gradients (x, weight, bias) of `op` for one set of inputs and output gradient. */
async function valuesAndGrads(
  shape: { batch: number[]; inFeatures: number; outFeatures: number },
  op: (x: Tensor, w: Tensor, b: Tensor) => Tensor,
  data: { x?: Float32Array; grad?: Float32Array } = {},
): Promise<Float32Array[]> {
  const { batch, inFeatures, outFeatures } = shape;
  const rows = batch.reduce((a, b) => a * b, 1);
  const x = tensor(data.x ?? Float32Array.from(randomArray(rows * inFeatures, 5)), [
    ...batch,
    inFeatures,
  ], { requiresGrad: true });
  const w = tensor(Float32Array.from(randomArray(outFeatures * inFeatures, 6)), [
    outFeatures,
    inFeatures,
  ], { requiresGrad: true });
  const b = tensor(Float32Array.from(randomArray(outFeatures, 7)), [outFeatures], {
    requiresGrad: true,
  });
  const y = op(x, w, b);
  const grad = data.grad ?? Float32Array.from(randomArray(rows * outFeatures, 8));
  y.backward({ grad: tensor(grad, y.shape) });
  return await Promise.all([y, x.grad!, w.grad!, b.grad!].map((t) => t.toArray()));
}

const sequence = (options: { p: number; training: boolean; seed: number }) =>
(
  x: Tensor,
  w: Tensor,
  b: Tensor,
) => dropout(relu(linear(x, w, b)), options);

const fused = (options: { p: number; training: boolean; seed: number }) =>
(
  x: Tensor,
  w: Tensor,
  b: Tensor,
) => linearReluDropout(x, w, { bias: b, dropout: options });

for (const [batch, inFeatures, outFeatures] of [[[128], 784, 256], [[3, 11], 37, 21]]) {
  const shape = {
    batch: batch as number[],
    inFeatures: inFeatures as number,
    outFeatures: outFeatures as number,
  };
  Deno.test(`linearReluDropout [${batch}, ${inFeatures}] -> ${outFeatures}: bit for bit the ops in sequence`, async () => {
    for (const p of [0.2, 0.5]) {
      const options = { p, training: true, seed: 4242 };
      const expected = await valuesAndGrads(shape, sequence(options));
      const actual = await valuesAndGrads(shape, fused(options));
      WHAT.forEach((what, k) => assertSameValues(actual[k], expected[k], `${what}, p ${p}`));
    }
  });
}

Deno.test("linearReluDropout in eval, with p = 0 and with p = 1 is the ops in sequence", async () => {
  const shape = { batch: [6], inFeatures: 9, outFeatures: 5 };
  for (
    const options of [
      { p: 0.5, training: false, seed: 1 },
      { p: 0, training: true, seed: 1 },
      { p: 1, training: true, seed: 1 },
    ]
  ) {
    const expected = await valuesAndGrads(shape, sequence(options));
    const actual = await valuesAndGrads(shape, fused(options));
    WHAT.forEach((what, k) =>
      assertSameValues(actual[k], expected[k], `${what}, ${JSON.stringify(options)}`)
    );
  }
});

Deno.test("linearReluDropout: one kernel forward and one before linear's backward", () => {
  tidy(() => {
    const x = tensor(Float32Array.from(randomArray(8 * 40, 1)), [8, 40]);
    const w = tensor(Float32Array.from(randomArray(24 * 40, 2)), [24, 40], { requiresGrad: true });
    const b = tensor(Float32Array.from(randomArray(24, 3)), [24], { requiresGrad: true });
    const options = { p: 0.2, training: true, seed: 5 };
    const count = (op: (x: Tensor, w: Tensor, b: Tensor) => Tensor) => {
      w.grad = null;
      b.grad = null;
      const start = streamStats().dispatches;
      const y = op(x, w, b);
      const forward = streamStats().dispatches - start;
      y.backward({ grad: tensor(new Float32Array(8 * 24).fill(1), [8, 24]) });
      return { forward, backward: streamStats().dispatches - start - forward };
    };
    const ops = count(sequence(options)), one = count(fused(options));
    assert.equal(one.forward, 1);
    assert.equal(ops.forward, 3);
    assert.equal(one.backward, ops.backward - 1);
  });
});

Deno.test("linearReluDropout keeps NaN: in the output where kept, and in the gradients", async () => {
  const shape = { batch: [4], inFeatures: 6, outFeatures: 8 };
  const x = Float32Array.from(randomArray(24, 9));
  x[7] = NaN; // row 1
  const options = { p: 0.25, training: true, seed: 31 };
  const expected = await valuesAndGrads(shape, sequence(options), { x });
  const actual = await valuesAndGrads(shape, fused(options), { x });
  WHAT.forEach((what, k) => assertSameValues(actual[k], expected[k], what));
  // NaN * 0 is NaN: the dropped elements of row 1 stay NaN too, as in PyTorch.
  for (let j = 0; j < 8; j++) assert(Number.isNaN(actual[0][8 + j]), `output [1, ${j}]`);
  const kept = dropoutMask(32, 0.25, 31);
  // A non-finite output gradient at a dropped element is never masked to a finite value.
  const grad = Float32Array.from(randomArray(32, 10));
  const dropped = kept.indexOf(0);
  grad[dropped] = Infinity;
  const [, , , biasGrad] = await valuesAndGrads(shape, fused(options), { grad });
  assert(Number.isNaN(biasGrad[dropped % 8]), "bias gradient of the dropped infinity");
});

Deno.test("linearReluDropout: a training step holds steady memory", async () => {
  const x = tensor(Float32Array.from(randomArray(16 * 30, 1)), [16, 30]);
  const w = tensor(Float32Array.from(randomArray(20 * 30, 2)), [20, 30], { requiresGrad: true });
  const b = tensor(Float32Array.from(randomArray(20, 3)), [20], { requiresGrad: true });
  let seed = 0;
  const step = () =>
    tidy(() => {
      const options = { p: 0.2, training: true, seed: seed++ };
      sum(linearReluDropout(x, w, { bias: b, dropout: options })).backward();
      for (const t of [w, b]) {
        t.grad!.dispose();
        t.grad = null;
      }
    });
  await assertSteadyMemory(step);
  for (const t of [x, w, b]) t.dispose();
});
