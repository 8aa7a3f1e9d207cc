import { crossEntropy, logSoftmax, nllLoss } from "../../nn/ops/softmax.ts";
import {
  crossEntropyBackwardReference,
  crossEntropyReference,
  logSoftmaxBackwardReference,
  logSoftmaxReference,
  nllLossBackwardReference,
  nllLossReference,
} from "./reference/softmax.ts";
import { tensor, zeros } from "../../nn/tensor.ts";
import { assert, assertThrows } from "../assert.ts";
import { assertClose, gpuReady, randomArray, randomInts } from "../testing.ts";
import { testOp } from "./op_helper.ts";

await gpuReady();

Deno.test("logSoftmax of [1, 2, 3] is [-2.4076, -1.4076, -0.4076], also shifted by 1000", async () => {
  const expected = [-2.40760596, -1.40760596, -0.40760596];
  assertClose(await logSoftmax(tensor([1, 2, 3], [1, 3])).toArray(), expected);
  assertClose(await logSoftmax(tensor([1001, 1002, 1003], [1, 3])).toArray(), expected, {
    atol: 1e-4,
  });
});

for (const [rows, classes] of [[1, 1], [1, 10], [3, 7], [4, 10]]) {
  Deno.test(`logSoftmax matches the reference and finite differences ([${rows}, ${classes}])`, async () => {
    await testOp({
      name: `logSoftmax [${rows}, ${classes}]`,
      inputs: [{
        shape: [rows, classes],
        data: randomArray(rows * classes, rows * classes, -3, 3),
      }],
      gpu: ([x]) => logSoftmax(x),
      reference: ([x]) => logSoftmaxReference(x, classes),
      backward: ([x], grad) => [
        logSoftmaxBackwardReference(grad, logSoftmaxReference(x, classes), classes),
      ],
      outputShape: [rows, classes],
    });
  });
}

for (const [rows, classes] of [[128, 10], [32, 10], [33, 1000]]) {
  Deno.test(`logSoftmax forward and backward match the reference ([${rows}, ${classes}])`, async () => {
    await testOp({
      name: `logSoftmax [${rows}, ${classes}]`,
      inputs: [{ shape: [rows, classes], data: randomArray(rows * classes, 7, -5, 5) }],
      seed: 8,
      gpu: ([x]) => logSoftmax(x),
      reference: ([x]) => logSoftmaxReference(x, classes),
      backward: ([x], grad) => [
        logSoftmaxBackwardReference(grad, logSoftmaxReference(x, classes), classes),
      ],
      gradTolerance: { atol: 1e-4 },
    });
  });
}

for (const [rows, classes] of [[1, 1], [1, 10], [5, 3], [128, 10], [32, 10]]) {
  Deno.test(`nllLoss and crossEntropy match the reference and finite differences ([${rows}, ${classes}])`, async () => {
    const target = { shape: [rows], dtype: "i32" as const, data: randomInts(rows, classes, rows) };
    const logits = randomArray(rows * classes, classes, -3, 3);
    await testOp({
      name: `nllLoss [${rows}, ${classes}]`,
      inputs: [{ shape: [rows, classes], data: logSoftmaxReference(logits, classes) }, target],
      gpu: ([x, t]) => nllLoss(x, t),
      reference: ([x, t]) => nllLossReference(x, t, classes),
      backward: (_, [grad]) => [nllLossBackwardReference(grad, target.data, classes), null],
      outputShape: [],
    });
    await testOp({
      name: `crossEntropy [${rows}, ${classes}]`,
      inputs: [{ shape: [rows, classes], data: logits }, target],
      gpu: ([x, t]) => crossEntropy(x, t),
      reference: ([x, t]) => crossEntropyReference(x, t, classes),
      backward: ([x, t], [grad]) => [crossEntropyBackwardReference(grad, x, t, classes), null],
      outputShape: [],
    });
  });
}

Deno.test("crossEntropy equals nllLoss(logSoftmax) on a study batch, gradients too", async () => {
  const [rows, classes] = [128, 10];
  const data = Float32Array.from(randomArray(rows * classes, 11, -4, 4));
  const target = tensor(randomInts(rows, classes, 12), [rows], { dtype: "i32" });
  const a = tensor(data, [rows, classes], { requiresGrad: true });
  const b = tensor(data, [rows, classes], { requiresGrad: true });
  const fused = crossEntropy(a, target);
  const composed = nllLoss(logSoftmax(b), target);
  assertClose([await fused.item()], [await composed.item()], { atol: 1e-5 }, "loss");
  fused.backward();
  composed.backward();
  assertClose(await a.grad!.toArray(), await b.grad!.toArray(), { atol: 1e-6 }, "gradient");
});

Deno.test("targets outside [0, C) contribute 0 to the loss and get no gradient", async () => {
  const [rows, classes] = [6, 4];
  const labels = Int32Array.of(1, -1, 4, 3, -100, 0);
  const logits = randomArray(rows * classes, 13, -2, 2);
  const logProbs = logSoftmaxReference(logits, classes);
  const target = tensor(labels, [rows], { dtype: "i32" });
  const x = tensor(Float32Array.from(logits), [rows, classes], { requiresGrad: true });
  const loss = crossEntropy(x, target);
  const expected = crossEntropyReference(logits, labels, classes);
  // Only rows 0, 3 and 5 count, and the mean still divides by 6.
  const valid = [0, 3, 5].reduce((sum, n) => sum - logProbs[n * classes + labels[n]], 0) / rows;
  assertClose([expected], [valid], { atol: 1e-12 }, "reference");
  assertClose([await loss.item()], [expected], {}, "crossEntropy");
  loss.backward({ grad: tensor([2], []) });
  const dx = crossEntropyBackwardReference(2, logits, labels, classes);
  assertClose(await x.grad!.toArray(), dx, {}, "crossEntropy gradient");
  assert.deepEqual(Array.from(dx.slice(classes, 3 * classes)), new Array(2 * classes).fill(0));

  const p = tensor(Float32Array.from(logProbs), [rows, classes], { requiresGrad: true });
  const nll = nllLoss(p, target);
  assertClose([await nll.item()], [nllLossReference(logProbs, labels, classes)], {}, "nllLoss");
  nll.backward({ grad: tensor([2], []) });
  assertClose(
    await p.grad!.toArray(),
    nllLossBackwardReference(2, labels, classes),
    {},
    "nll grad",
  );
});

Deno.test("losses reject bad shapes and dtypes, naming the op and both shapes", () => {
  const x = zeros([4, 10]);
  assertThrows(
    () => nllLoss(x, zeros([5], { dtype: "i32" })),
    /^nllLoss: target shape \[5\] does not match logProbs \[4, 10\] \(needs \[4\]\)$/,
  );
  assertThrows(
    () => crossEntropy(x, zeros([4, 1], { dtype: "i32" })),
    /^crossEntropy: target shape \[4, 1\] does not match logits \[4, 10\] \(needs \[4\]\)$/,
  );
  assertThrows(() => crossEntropy(x, zeros([4])), /^crossEntropy: target must be an i32 tensor/);
  assertThrows(() => nllLoss(zeros([4]), zeros([4], { dtype: "i32" })), /^nllLoss: logProbs must/);
  assertThrows(() => logSoftmax(zeros([3, 0])), /^logSoftmax: needs a last dimension/);
});
