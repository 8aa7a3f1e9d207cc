import { crossEntropy, logSoftmax, nllLoss, softmax } from "../../nn/ops/softmax.ts";
import {
  crossEntropyBackwardReference,
  crossEntropyReference,
  logSoftmaxBackwardReference,
  logSoftmaxReference,
  nllLossBackwardReference,
  nllLossReference,
  softmaxDimBackwardReference,
  softmaxDimReference,
} from "./reference/softmax.ts";
import { ones, type Tensor, tensor, zeros } from "../../nn/tensor.ts";
import { add } from "../../nn/ops/elementwise.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { streamStats } from "../../nn/gpu/stream.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { noGrad } from "../../nn/autograd.ts";
import { assert, assertThrows } from "../assert.ts";
import { assertClose, gpuReady, randomArray, randomInts, withKernelPolicy } from "../testing.ts";
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

for (const [rows, classes] of [[1, 1], [5, 3], [32, 10], [33, 64]]) {
  Deno.test(`nllLoss(logSoftmax(x)) matches crossEntropy's reference and finite differences ([${rows}, ${classes}])`, async () => {
    const target = { shape: [rows], dtype: "i32" as const, data: randomInts(rows, classes, rows) };
    for (const implicitGrad of [false, true]) {
      await testOp({
        name: `nllLoss(logSoftmax) [${rows}, ${classes}]${implicitGrad ? " (implicit grad)" : ""}`,
        inputs: [{ shape: [rows, classes], data: randomArray(rows * classes, 5, -3, 3) }, target],
        gpu: ([x, t]) => nllLoss(logSoftmax(x), t),
        reference: ([x, t]) => crossEntropyReference(x, t, classes),
        backward: ([x, t], [grad]) => [crossEntropyBackwardReference(grad, x, t, classes), null],
        outputShape: [],
        implicitGrad,
      });
    }
  });
}

Deno.test("nllLoss(logSoftmax(x)) takes one backward kernel, with the two kernels' exact gradient", async () => {
  const [rows, classes] = [37, 10];
  const data = Float32Array.from(randomArray(rows * classes, 21, -6, 6));
  const target = tensor(randomInts(rows, classes, 22), [rows], { dtype: "i32" });
  const gradient = async (separate: boolean) => {
    const x = tensor(data, [rows, classes], { requiresGrad: true });
    const logProbs = logSoftmax(x);
    // A reshape in between hides the logSoftmax from nllLoss: its two backward kernels run.
    const loss = nllLoss(separate ? logProbs.reshape([rows, classes]) : logProbs, target);
    const before = streamStats().dispatches;
    loss.backward();
    const dispatches = streamStats().dispatches - before;
    return { values: await x.grad!.toArray(), dispatches };
  };
  const fused = await gradient(false);
  const separate = await gradient(true);
  assert.deepEqual(fused.values, separate.values);
  // Separately: nllLoss's and logSoftmax's kernels (the reshape's backward is a view); fused: one.
  assert.equal(fused.dispatches, separate.dispatches - 1, "one kernel fewer");
});

/** The losses with fused kernels (default options), named, for one target. */
function fusedLosses(target: Tensor): [string, (x: Tensor) => Tensor][] {
  return [
    ["nllLoss", (x) => nllLoss(x, target)],
    ["nllLoss(logSoftmax)", (x) => nllLoss(logSoftmax(x), target)],
    ["crossEntropy", (x) => crossEntropy(x, target)],
  ];
}

Deno.test("backward() on a loss runs no kernel: the forward wrote the gradient { grad: ones } gives", async () => {
  const [rows, classes] = [19, 7];
  const data = Float32Array.from(randomArray(rows * classes, 25, -5, 5));
  const target = tensor(randomInts(rows, classes, 26), [rows], { dtype: "i32" });
  for (const [name, loss] of fusedLosses(target)) {
    const gradient = async (seeded: boolean) => {
      const x = tensor(data, [rows, classes], { requiresGrad: true });
      const out = loss(x);
      const before = streamStats().dispatches;
      out.backward(seeded ? { grad: ones([]) } : {});
      const dispatches = streamStats().dispatches - before;
      return { values: await x.grad!.toArray(), dispatches };
    };
    const unit = await gradient(false);
    const seeded = await gradient(true);
    assert.deepEqual(unit.values, seeded.values, `${name}: gradient`);
    // The seeded backward fills the seed and runs the loss's backward kernel.
    assert.equal(unit.dispatches, seeded.dispatches - 2, `${name}: dispatches`);
  }
});

Deno.test("a loss's unit gradient is handed over once: a retained second backward() computes it again", async () => {
  const [rows, classes] = [9, 5];
  const data = Float32Array.from(randomArray(rows * classes, 27, -3, 3));
  const target = tensor(randomInts(rows, classes, 28), [rows], { dtype: "i32" });
  for (const [name, loss] of fusedLosses(target)) {
    const x = tensor(data, [rows, classes], { requiresGrad: true });
    const out = loss(x);
    out.backward({ retainGraph: true });
    const once = await x.grad!.toArray();
    // The second gradient is added into x.grad, which holds the first one's buffer.
    out.backward();
    const twice = await x.grad!.toArray();
    assert.deepEqual(twice, once.map((value) => 2 * value), `${name}: gradient twice`);
    assert.ok(once.some((value) => value !== 0), `${name}: a gradient`);
  }
});

Deno.test("a loss writes its unit gradient only in grad mode, and backward() leaks none of it", async () => {
  const target = tensor([0, 1, 2, 0], [4], { dtype: "i32" });
  const data = randomArray(12, 29, -1, 1);
  for (const loss of [crossEntropy, nllLoss]) {
    const x = tensor(data, [4, 3], { requiresGrad: true });
    const live = () => memoryStats().liveBuffers;
    let before = live();
    const out = noGrad(() => loss(x, target));
    assert.equal(out.requiresGrad, false);
    assert.equal(live() - before, 1, `${loss.name}: only the loss is left outside grad mode`);
    out.dispose();
    before = live();
    for (let step = 0; step < 3; step++) {
      const value = loss(x, target);
      value.backward();
      value.dispose();
      await x.grad!.toArray();
      x.grad!.dispose();
      x.grad = null;
    }
    assert.equal(live(), before, `${loss.name}: live buffers after three backward() calls`);
    x.dispose();
  }
});

Deno.test("nllLoss(logSoftmax(x)): other uses of the log-probabilities still get their gradient", async () => {
  const [rows, classes] = [6, 5];
  const data = randomArray(rows * classes, 23, -2, 2);
  const labels = randomInts(rows, classes, 24);
  const target = tensor(labels, [rows], { dtype: "i32" });
  const x = tensor(Float32Array.from(data), [rows, classes], { requiresGrad: true });
  const logProbs = logSoftmax(x);
  add(nllLoss(logProbs, target), sum(logProbs)).backward();
  // d/dx [ce(x) + Σ logSoftmax(x)] = ce's gradient + (1 - C · softmax(x)) per row.
  const expected = crossEntropyBackwardReference(1, data, labels, classes);
  const logP = logSoftmaxReference(data, classes);
  for (let i = 0; i < expected.length; i++) expected[i] += 1 - classes * Math.exp(logP[i]);
  assertClose(await x.grad!.toArray(), expected, { atol: 1e-5 });
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
  // Only rows 0, 3 and 5 count; the mean divides by the 5 rows whose target is not -100 (as
  // PyTorch's default ignoreIndex): targets out of range other than -100 still count.
  const valid = [0, 3, 5].reduce((sum, n) => sum - logProbs[n * classes + labels[n]], 0) / 5;
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
    /^crossEntropy: target shape \[4, 1\] does not match logits \[4, 10\] \(needs \[4\], or f32 probabilities of shape \[4, 10\]\)$/,
  );
  assertThrows(() => crossEntropy(x, zeros([4])), /^crossEntropy: target must be an i32 tensor/);
  assertThrows(
    () => nllLoss(zeros([4]), zeros([4], { dtype: "i32" })),
    /^nllLoss: target shape \[4\] does not match logProbs \[4\] \(needs \[\]\)$/,
  );
  assertThrows(() => nllLoss(zeros([]), zeros([], { dtype: "i32" })), /^nllLoss: logProbs must/);
  // An empty dimension gives an empty result, as PyTorch.
  assert.deepEqual(logSoftmax(zeros([3, 0])).shape, [3, 0]);
});

/** Shapes and dims of softmax: strided rows, contiguous vec4 rows, 0-d, size-1 dims. */
const DIM_CASES: readonly [number[], number | undefined][] = [
  [[2, 3, 5], 0],
  [[2, 3, 5], 1],
  [[2, 3, 5], 2],
  [[2, 3, 5], undefined],
  [[2, 3, 5], -2],
  [[], undefined],
  [[], 0],
  [[7], 0],
  [[4, 1, 3], 1],
  [[1, 6], 0],
  [[3, 8], -1], // contiguous rows, 4 at a time
  [[8, 4], 0], // four neighbouring rows per invocation, one per vec4 lane
  [[3, 5, 8], 1],
  [[5, 12], 0],
  [[3, 100], -1], // logSoftmax: past the private-memory fast path
  [[33, 130], -1],
  [[33, 130], 0],
];

for (const [shape, dim] of DIM_CASES) {
  Deno.test(`softmax and logSoftmax over dim ${dim} of [${shape}] match the reference`, async () => {
    const size = shape.reduce((a, b) => a * b, 1);
    const d = dim ?? -1;
    for (const log of [false, true]) {
      const op = log ? logSoftmax : softmax;
      await testOp({
        name: `${log ? "logSoftmax" : "softmax"} [${shape}] dim ${dim}`,
        inputs: [{ shape, data: randomArray(size, size, -4, 4) }],
        gpu: ([x]) => dim === undefined ? op(x) : op(x, { dim }),
        reference: ([x]) => softmaxDimReference(x, shape, d, log),
        backward: ([x], grad) => [softmaxDimBackwardReference(grad, x, shape, d, log)],
        outputShape: shape,
        gradTolerance: { atol: 2e-5, rtol: 1e-4 },
      });
    }
  });
}

// Long contiguous rows: one workgroup per row under the hardware policy (softmax_rows.ts), one
// invocation per row under the software policy; both policies forced, whichever the adapter has.
const LONG_ROWS: [number[], number][] = [
  [[2, 128], -1], // the hardware policy's shortest cooperative row, 32 invocations
  [[5, 1000], -1], // vec4s
  [[3, 4099], -1], // scalars, several per invocation
  [[2, 3, 257], 2],
];

for (const policy of ["software", "hardware"] as const) {
  Deno.test(`softmax and logSoftmax over long rows match the reference (${policy} policy)`, async () => {
    await withKernelPolicy(policy, async () => {
      for (const [shape, dim] of LONG_ROWS) {
        const size = shape.reduce((a, b) => a * b, 1);
        for (const log of [false, true]) {
          const op = log ? logSoftmax : softmax;
          await testOp({
            name: `${log ? "logSoftmax" : "softmax"} [${shape}] (${policy})`,
            inputs: [{ shape, data: randomArray(size, size + 1, -6, 6) }],
            gpu: ([x]) => op(x, { dim }),
            reference: ([x]) => softmaxDimReference(x, shape, dim, log),
            backward: ([x], grad) => [softmaxDimBackwardReference(grad, x, shape, dim, log)],
            outputShape: shape,
            gradTolerance: { atol: 2e-5, rtol: 1e-4 },
          });
        }
      }
      // A NaN anywhere in a row makes it NaN, also with more elements after it in the same
      // invocation (a max that drops NaN would lose it), and a row of huge values does not
      // overflow.
      for (const classes of [1000, 4099]) {
        const data = new Float32Array(2 * classes);
        for (let j = 0; j < classes; j++) data[classes + j] = 3000 + (j % 7);
        data[1] = NaN;
        const x = tensor(data, [2, classes]);
        const p = await softmax(x).toArray();
        const l = await logSoftmax(x).toArray();
        assert.ok(p.slice(0, classes).every(Number.isNaN), `softmax NaN row, ${classes}`);
        assert.ok(l.slice(0, classes).every(Number.isNaN), `logSoftmax NaN row, ${classes}`);
        const expected = softmaxDimReference(Array.from(data.slice(classes)), [classes], 0, true);
        assertClose(l.slice(classes), expected, { atol: 1e-4 }, `logSoftmax huge row, ${classes}`);
      }
    });
  });
}

Deno.test("softmax of a row holding NaN is NaN; large values do not overflow", async () => {
  const x = tensor([1, NaN, 2, 1000, 1001, 1002], [2, 3]);
  const p = await softmax(x).toArray();
  assert.ok(p.slice(0, 3).every(Number.isNaN));
  assertClose(p.slice(3), [0.09003057, 0.24472847, 0.66524096]);
  const columns = await softmax(x, { dim: 0 }).toArray();
  assert.ok(Number.isNaN(columns[1]) && Number.isNaN(columns[4]));
  assertClose([columns[0], columns[3]], [0, 1]);
});

Deno.test("softmax and logSoftmax refuse bad dims and dtypes, naming the op", () => {
  const x = zeros([3, 4]);
  assertThrows(
    () => softmax(x, { dim: 2 }),
    /^softmax: dim 2 is out of range for a tensor of rank 2 \(expected -2\.\.1\)$/,
  );
  assertThrows(
    () => logSoftmax(x, { dim: -3 }),
    /^logSoftmax: dim -3 is out of range for a tensor of rank 2 \(expected -2\.\.1\)$/,
  );
  assertThrows(
    () => softmax(x, { dim: [0] as unknown as number }),
    /^softmax: dim must be one dimension \(a number\), got \[0\]$/,
  );
  assertThrows(
    () => softmax(zeros([3], { dtype: "i32" })),
    /^softmax: needs an f32 tensor, got i32 of shape \[3\]$/,
  );
});
