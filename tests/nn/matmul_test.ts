import { linear, matmul } from "../../nn/ops/matmul.ts";
import {
  linearBackwardReference,
  linearReference,
  matmulBackwardReference,
  matmulReference,
} from "./reference/matmul.ts";
import { gpuReady, randomArray } from "../testing.ts";
import { testOp } from "./op_helper.ts";
import { assertThrows } from "../assert.ts";
import { tensor } from "../../nn/tensor.ts";
import { streamStats } from "../../nn/gpu/stream.ts";
import { assert } from "../assert.ts";

await gpuReady();

const shapes: [number, number, number][] = [
  [1, 1, 1],
  [1, 10, 7],
  [3, 5, 2],
  [7, 33, 13],
  [17, 9, 40],
  [5, 70, 129],
  [128, 10, 320],
  [10, 320, 128],
];

// Gradients against the reference backward at every shape, and against finite differences too where
// m·n·k <= 20,000.
for (const [m, n, k] of shapes) {
  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      const layout = `${transposeA ? "T" : "N"}${transposeB ? "T" : "N"}`;
      Deno.test(`matmul ${layout} ${m}x${n}x${k} matches the reference and finite differences`, async () => {
        const dims = { m, n, k, transposeA, transposeB };
        await testOp({
          name: `matmul ${layout} ${m}x${n}x${k}`,
          inputs: [
            { shape: transposeA ? [k, m] : [m, k], data: randomArray(m * k, m * 7 + k) },
            { shape: transposeB ? [n, k] : [k, n], data: randomArray(k * n, n * 13 + k) },
          ],
          gpu: ([x, y]) => matmul(x, y, { transposeA, transposeB }),
          reference: ([x, y]) => matmulReference(x, y, dims),
          backward: ([x, y], grad) => matmulBackwardReference(x, y, grad, dims),
          outputShape: [m, n],
          forwardTolerance: { atol: 1e-4, rtol: 1e-4 },
          gradTolerance: { atol: 1e-4, rtol: 1e-4 },
          finiteDifferenceLimit: m * n * k <= 20_000 ? Infinity : 0,
        });
      });
    }
  }
}

for (
  const [batch, inFeatures, outFeatures] of [[1, 3, 2], [9, 31, 17], [128, 784, 256], [32, 128, 10]]
) {
  Deno.test(`linear ${batch}x${inFeatures}->${outFeatures} matches the reference and finite differences`, async () => {
    const sizes = { batch, inFeatures, outFeatures };
    await testOp({
      name: `linear ${batch}x${inFeatures}->${outFeatures}`,
      inputs: [[batch, inFeatures], [outFeatures, inFeatures], [outFeatures]],
      gpu: ([x, w, b]) => linear(x, w, b),
      reference: ([x, w, b]) => linearReference(x, w, b, sizes),
      backward: ([x, w], grad) => linearBackwardReference(x, w, grad, sizes),
      outputShape: [batch, outFeatures],
      forwardTolerance: { atol: 1e-4, rtol: 1e-4 },
      gradTolerance: { atol: 1e-4, rtol: 1e-4 },
      finiteDifferenceLimit: batch * inFeatures * outFeatures <= 20_000 ? Infinity : 0,
    });
  });
}

// [9, 200, 64]: the weight gradient [64, 200] puts its lanes on the 64 rows (less padding), so
// the bias gradient is summed by the lanes rather than by the uniform operand.
for (
  const [batch, inFeatures, outFeatures] of [[37, 33, 7], [3, 5, 2], [5, 8, 40], [9, 200, 64]]
) {
  Deno.test(`linear ${batch}x${inFeatures}->${outFeatures}: the bias gradient rides along the weight gradient's kernel, bit for bit`, async () => {
    const x = tensor(Float32Array.from(randomArray(batch * inFeatures, 31)), [batch, inFeatures]);
    const w = Float32Array.from(randomArray(outFeatures * inFeatures, 32));
    const b = Float32Array.from(randomArray(outFeatures, 33));
    const g = tensor(Float32Array.from(randomArray(batch * outFeatures, 34)), [
      batch,
      outFeatures,
    ]);
    const backward = async (weightGrad: boolean, withBias: boolean) => {
      const weight = tensor(w, [outFeatures, inFeatures], { requiresGrad: weightGrad });
      const bias = tensor(b, [outFeatures], { requiresGrad: withBias });
      const y = linear(x, weight, withBias ? bias : undefined);
      const before = streamStats().dispatches;
      y.backward({ grad: g });
      return {
        dispatches: streamStats().dispatches - before,
        weight: weightGrad ? await weight.grad!.toArray() : null,
        bias: withBias ? await bias.grad!.toArray() : null,
      };
    };
    const both = await backward(true, true);
    const weightOnly = await backward(true, false);
    const biasOnly = await backward(false, true);
    assert.deepEqual(both.weight, weightOnly.weight, "weight gradient");
    assert.deepEqual(both.bias, biasOnly.bias, "bias gradient");
    // One kernel for both, whichever dimension its lanes are on.
    assert.equal(both.dispatches, weightOnly.dispatches);
  });
}

Deno.test("matmul and linear name both shapes when they do not fit", () => {
  const a = tensor(new Float32Array(6), [2, 3]);
  const b = tensor(new Float32Array(8), [4, 2]);
  assertThrows(() => matmul(a, b), /matmul: inner dimensions differ.*\[2, 3\].*\[4, 2\]/);
  assertThrows(() => linear(a, b), /linear: input \[2, 3\] does not fit weight \[4, 2\]/);
  a.dispose();
  b.dispose();
});
