import { linearLogSoftmax } from "../../nn/ops/linear_log_softmax.ts";
import { linear, logSoftmaxEpilogueApplies } from "../../nn/ops/matmul.ts";
import { logSoftmax, nllLoss } from "../../nn/ops/softmax.ts";
import { streamStats } from "../../nn/gpu/stream.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import { linearBackwardReference, linearReference } from "./reference/matmul.ts";
import { assert } from "../assert.ts";
import { assertSameValues, gpuReady, randomArray, randomInts } from "../testing.ts";
import { logSoftmaxBackwardReference, logSoftmaxReference } from "./reference/softmax.ts";
import { testOp } from "./op_helper.ts";

await gpuReady();

// Awkward shapes: rows that fill no register block, one class, K with a tail (in % 4 != 0), the
// study's heads at batch 32 and 128, and one too wide for a lane's rows (the two ops).
const SHAPES = [[5, 7, 3], [1, 3, 1], [33, 50, 10], [32, 320, 10], [128, 128, 10], [9, 13, 40]];

for (const [batch, inFeatures, outFeatures] of SHAPES) {
  const sizes = { batch, inFeatures, outFeatures };
  Deno.test(`linearLogSoftmax ${batch}x${inFeatures}->${outFeatures} against float64`, async () => {
    await testOp({
      name: `linearLogSoftmax ${batch}x${inFeatures}->${outFeatures}`,
      inputs: [[batch, inFeatures], [outFeatures, inFeatures], [outFeatures]],
      gpu: ([x, w, b]) => linearLogSoftmax(x, w, b),
      reference: ([x, w, b]) => logSoftmaxReference(linearReference(x, w, b, sizes), outFeatures),
      backward: ([x, w, b], grad) => {
        const y = logSoftmaxReference(linearReference(x, w, b, sizes), outFeatures);
        const sumsGrad = logSoftmaxBackwardReference(grad, y, outFeatures);
        return linearBackwardReference(x, w, sumsGrad, sizes);
      },
      outputShape: [batch, outFeatures],
      forwardTolerance: { atol: 1e-4, rtol: 1e-4 },
      gradTolerance: { atol: 1e-4, rtol: 1e-4 },
      finiteDifferenceLimit: batch * inFeatures * outFeatures <= 5_000 ? Infinity : 0,
    });
  });
}

/**
 * Log-probabilities and the gradients (x, weight, bias) of nllLoss(head(x, w, b), target), with
 * x's row 2 NaN when `nanRow`.
 */
async function lossValuesAndGrads(
  head: (x: Tensor, w: Tensor, b: Tensor) => Tensor,
  [rows, inFeatures, classes]: number[],
  nanRow = false,
): Promise<Float32Array[]> {
  const xData = Float32Array.from(randomArray(rows * inFeatures, 11, -3, 3));
  if (nanRow) xData.fill(NaN, 2 * inFeatures, 3 * inFeatures);
  const x = tensor(xData, [rows, inFeatures], { requiresGrad: true });
  const w = tensor(
    Float32Array.from(randomArray(classes * inFeatures, 12)),
    [classes, inFeatures],
    {
      requiresGrad: true,
    },
  );
  const b = tensor(Float32Array.from(randomArray(classes, 13)), [classes], { requiresGrad: true });
  const target = tensor(randomInts(rows, classes, 14), [rows], { dtype: "i32" });
  const y = head(x, w, b);
  const loss = nllLoss(y, target);
  loss.backward();
  const values = await Promise.all([y, loss, x.grad!, w.grad!, b.grad!].map((t) => t.toArray()));
  for (const t of [x, w, b, target, y, loss]) t.dispose();
  return values;
}

const WHAT = ["log-probabilities", "loss", "x gradient", "weight gradient", "bias gradient"];

for (const shape of [[32, 320, 10], [7, 9, 3], [128, 128, 10]]) {
  Deno.test(`linearLogSoftmax ${shape.join("x")} under nllLoss: bit for bit the two ops, NaN rows kept`, async () => {
    assert.ok(logSoftmaxEpilogueApplies(shape[0], shape[1], shape[2]), "the fused kernel applies");
    for (const nanRow of [false, true]) {
      const expected = await lossValuesAndGrads(
        (x, w, b) => logSoftmax(linear(x, w, b)),
        shape,
        nanRow,
      );
      const actual = await lossValuesAndGrads(linearLogSoftmax, shape, nanRow);
      WHAT.forEach((what, k) =>
        assertSameValues(actual[k], expected[k], `${what}, NaN row ${nanRow}`)
      );
      if (nanRow) {
        assert.ok(Number.isNaN(actual[0][2 * shape[2]]), "the NaN row's log-probabilities");
      }
    }
  });
}

Deno.test("linearLogSoftmax: one dispatch where a lane holds whole rows, the two ops' otherwise", () => {
  tidy(() => {
    const dispatches = (rows: number, classes: number) => {
      const x = tensor(Float32Array.from(randomArray(rows * 24, 1)), [rows, 24]);
      const w = tensor(Float32Array.from(randomArray(classes * 24, 2)), [classes, 24]);
      const b = tensor(Float32Array.from(randomArray(classes, 3)), [classes]);
      const before = streamStats().dispatches;
      linearLogSoftmax(x, w, b);
      return streamStats().dispatches - before;
    };
    assert.equal(dispatches(32, 10), 1);
    assert.ok(!logSoftmaxEpilogueApplies(9, 24, 40));
    assert.equal(dispatches(9, 40), 2);
  });
});

Deno.test("linearLogSoftmax: bad shapes get linear's errors", () => {
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const w = tensor([1, 2, 3, 4], [2, 2]);
  assert.throws(() => linearLogSoftmax(x, w), /does not fit weight \[2, 2\]/);
  x.dispose();
  w.dispose();
});
