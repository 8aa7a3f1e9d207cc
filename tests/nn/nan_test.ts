// NaN propagates through relu, max pooling and batch norm as in PyTorch 1.13 (CPU): the
// expected values written out below are PyTorch's; the float64 references agree with them.
import { batchNorm, batchNormReluMaxPool2d } from "../../nn/ops/batch_norm.ts";
import { relu } from "../../nn/ops/elementwise.ts";
import { maxPool2d, type MaxPoolOptions } from "../../nn/ops/max_pool.ts";
import { argmax, correctCount } from "../../nn/ops/reduce.ts";
import { argmaxReference } from "./reference/reduce.ts";
import { MetricsAccumulator } from "../../train/metrics_accumulator.ts";
import {
  batchNormBackwardReference,
  batchNormReference,
  runningStatsReference,
} from "./reference/batch_norm.ts";
import { reluBackwardReference, reluReference } from "./reference/elementwise.ts";
import { maxPool2dBackwardReference, maxPool2dReference } from "./reference/max_pool.ts";
import { ones, tensor, zeros } from "../../nn/tensor.ts";
import { fileURLToPath } from "node:url";
import { assert } from "../assert.ts";
import { gpuReady, randomArray } from "../testing.ts";

await gpuReady();

/**
 * Asserts NaN exactly where `expected` has NaN, and the other values within `atol` (Infinity
 * must match exactly).
 */
function assertNaNClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  atol = 0,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    const same = Number.isNaN(e)
      ? Number.isNaN(a)
      : a === e || Math.abs(a - e) <= atol + 1e-4 * Math.abs(e);
    assert.ok(same, `${what}: [${i}] is ${a}, expected ${e}`);
  }
}

Deno.test("relu keeps NaN and passes its gradient, as PyTorch", async () => {
  const values = [NaN, -1, 2, 0, -Infinity, Infinity, NaN, -3];
  const x = tensor(values, [8], { requiresGrad: true });
  const y = relu(x);
  const expected = [NaN, 0, 2, 0, 0, Infinity, NaN, 0];
  assertNaNClose(await y.toArray(), expected, "relu");
  assertNaNClose(reluReference(values), expected, "reference");
  const grad = [1, 2, 3, 4, 5, 6, 7, 8];
  y.backward({ grad: tensor(grad, [8]) });
  const dx = [1, 0, 3, 0, 0, 6, 7, 0];
  assertNaNClose(await x.grad!.toArray(), dx, "relu gradient");
  assertNaNClose(reluBackwardReference(grad, values), dx, "reference gradient");
});

Deno.test("maxPool2d: a window holding NaN gives NaN and sends its gradient to the last NaN", async () => {
  // PyTorch: max_pool2d(x, 2) = [[nan, nan], [8, 10]], indices [[1, 7], [13, 15]].
  const values = [1, NaN, 3, 0, 2, 5, NaN, NaN, -1, -2, -3, -4, 7, 8, 9, 10];
  const x = tensor(values, [1, 1, 4, 4], { requiresGrad: true });
  const out = maxPool2d(x, { kernelSize: 2 });
  assertNaNClose(await out.toArray(), [NaN, NaN, 8, 10], "forward");
  const reference = maxPool2dReference(values, [1, 1, 4, 4], { kernelSize: 2 });
  assert.deepEqual(Array.from(reference.indices), [1, 7, 13, 15]);
  out.backward({ grad: tensor([1, 2, 3, 4], [1, 1, 2, 2]) });
  assert.deepEqual(
    Array.from(await x.grad!.toArray()),
    [0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4],
  );
});

Deno.test("maxPool2d's 2x2 kernels (rows of 8) pick NaN in every corner, the last NaN winning", async () => {
  // Windows: NaN upper left (PyTorch index 0); NaN lower left after a larger value (2); NaN in
  // both lower corners (3); NaN upper right beside +Infinity (1).
  const top = [NaN, 1, 9, 2, 1, 2, Infinity, NaN];
  const bottom = [2, 3, NaN, 3, NaN, NaN, 1, 1];
  const values = [...top, ...bottom];
  for (const relu of [false, true]) {
    const x = tensor(values, [1, 1, 2, 8], { requiresGrad: true });
    const out = maxPool2d(x, { kernelSize: 2, relu });
    assertNaNClose(await out.toArray(), [NaN, NaN, NaN, NaN], `forward (relu ${relu})`);
    out.backward({ grad: tensor([1, 2, 3, 4], [1, 1, 1, 4]) });
    assert.deepEqual(
      Array.from(await x.grad!.toArray()),
      [1, 0, 0, 0, 0, 0, 0, 4, 0, 0, 2, 0, 0, 3, 0, 0],
      `gradient (relu ${relu})`,
    );
  }
});

const poolCases: [number[], MaxPoolOptions][] = [
  [[2, 3, 4, 8], { kernelSize: 2 }],
  [[2, 3, 4, 8], { kernelSize: 2, relu: true }],
  [[3, 2, 9, 11], { kernelSize: 2 }],
  [[2, 3, 7, 5], { kernelSize: 3, stride: 2, padding: 1 }],
  [[2, 3, 6, 6], { kernelSize: 3, stride: 1, relu: true }],
];
for (const [shape, options] of poolCases) {
  Deno.test(`maxPool2d with scattered NaN matches the reference (${shape}, ${JSON.stringify(options)})`, async () => {
    const size = shape.reduce((a, b) => a * b, 1);
    // About one value in six is NaN, so some windows hold several.
    const values = Array.from(randomArray(size, size + 7), (v, i) => (i * 7) % 6 === 1 ? NaN : v);
    const data = Float64Array.from(Float32Array.from(values));
    const input = options.relu ? reluReference(data) : data;
    const expected = maxPool2dReference(input, shape, options);
    const x = tensor(values, shape, { requiresGrad: true });
    const out = maxPool2d(x, options);
    assertNaNClose(await out.toArray(), expected.output, "forward");
    const grad = randomArray(out.size, 3);
    out.backward({ grad: tensor(grad, out.shape) });
    let dx = maxPool2dBackwardReference(grad, expected.indices, shape, expected.shape);
    if (options.relu) dx = reluBackwardReference(dx, data);
    assertNaNClose(await x.grad!.toArray(), dx, "gradient", 1e-6);
  });
}

for (
  const [shape, bad] of [[[4, 3, 2, 8], NaN], [[3, 2, 5], NaN], [[4, 3, 2, 8], Infinity]] as const
) {
  Deno.test(`batchNorm: a ${bad} in a channel makes that channel NaN, its running stats non-finite (${shape})`, async () => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = Array.from(randomArray(size, 11));
    const spatial = shape.slice(2).reduce((a, b) => a * b, 1);
    values[spatial * (shape[1] + 1) + 1] = bad; // sample 1, channel 1
    const channels = shape[1];
    const x = tensor(values, shape, { requiresGrad: true });
    const weight = ones([channels], { requiresGrad: true });
    const bias = zeros([channels], { requiresGrad: true });
    const runningMean = zeros([channels]), runningVar = ones([channels]);
    const y = batchNorm(x, { weight, bias, runningMean, runningVar, training: true });
    const data = Float64Array.from(Float32Array.from(values));
    const expected = batchNormReference(data, shape, { training: true });
    assert.ok(expected.some(Number.isNaN) && expected.some((v) => !Number.isNaN(v)));
    assertNaNClose(await y.toArray(), expected, "forward", 1e-4);
    const running = runningStatsReference(
      new Float64Array(channels),
      new Float64Array(channels).fill(1),
      data,
      shape,
    );
    // With Infinity, PyTorch's running mean is Infinity; ours is NaN (Chan's merge subtracts
    // means): either way not finite, which is what the divergence guard looks for.
    const runningAlike = (v: number) => Number.isFinite(bad) || Number.isFinite(v) ? v : NaN;
    const mean = Array.from(await runningMean.toArray(), runningAlike);
    assertNaNClose(mean, running.mean.map(runningAlike), "running mean", 1e-5);
    assertNaNClose(await runningVar.toArray(), running.variance, "running var", 1e-4);
    const grad = randomArray(size, 12);
    y.backward({ grad: tensor(grad, shape) });
    const grads = batchNormBackwardReference(grad, data, shape, { training: true });
    assertNaNClose(await x.grad!.toArray(), grads.x, "dx", 1e-4);
    assertNaNClose(await weight.grad!.toArray(), grads.weight, "dweight", 1e-4);
    assertNaNClose(await bias.grad!.toArray(), grads.bias, "dbias", 1e-4);
  });
}

Deno.test("batchNormReluMaxPool2d with NaN equals maxPool2d(batchNorm(x), relu), gradients too", async () => {
  const shape = [3, 4, 4, 8];
  const size = shape.reduce((a, b) => a * b, 1);
  const values = Array.from(randomArray(size, 21));
  values[32 * 1 + 9] = NaN; // sample 0, channel 1
  values[32 * 6 + 30] = NaN; // sample 1, channel 2
  const run = (fused: boolean) => {
    const x = tensor(values, shape, { requiresGrad: true });
    const weight = tensor([1, -0.5, 2, 1.5], [4], { requiresGrad: true });
    const bias = tensor([0.1, 0.2, -0.3, 0], [4], { requiresGrad: true });
    const runningMean = zeros([4]), runningVar = ones([4]);
    const options = { weight, bias, runningMean, runningVar, training: true };
    const out = fused
      ? batchNormReluMaxPool2d(x, options)
      : maxPool2d(batchNorm(x, options), { kernelSize: 2, relu: true });
    out.backward({ grad: tensor(randomArray(out.size, 22), out.shape) });
    return { out, x, weight, bias, runningMean, runningVar };
  };
  const fused = run(true), unfused = run(false);
  const pooled = await fused.out.toArray();
  assert.ok(pooled.some(Number.isNaN), "some outputs are NaN");
  assert.ok(pooled.some((v) => !Number.isNaN(v)), "channel 0 and 3 stay finite");
  for (const name of ["out", "runningMean", "runningVar"] as const) {
    assertNaNClose(await fused[name].toArray(), await unfused[name].toArray(), name, 1e-6);
  }
  for (const name of ["x", "weight", "bias"] as const) {
    assertNaNClose(
      await fused[name].grad!.toArray(),
      await unfused[name].grad!.toArray(),
      `d${name}`,
      1e-5,
    );
  }
});

Deno.test("argmax picks a row's first NaN, as PyTorch; correctCount and the metrics agree", async () => {
  const scores = [1, NaN, 2, NaN, NaN, NaN, 3, 0, 1, 3, 2, NaN, 5, 5, 1, 0, -1, -2, -3, -4];
  const expected = [1, 0, 3, 0, 0]; // torch.argmax(x, 1)
  const x = tensor(scores, [5, 4]);
  const labels = tensor([1, 2, 3, 0, 1], [5], { dtype: "i32" });
  const loss = tensor([1], []);
  const sums = new MetricsAccumulator();
  try {
    assert.deepEqual(Array.from(await argmax(x, { dim: 1 }).toArray()), expected);
    assert.deepEqual(Array.from(argmaxReference(scores, 4)), expected);
    assert.equal(await correctCount(x, labels).item(), 3);
    sums.add(loss, x, labels);
    assert.equal((await sums.read()).correct, 3);
  } finally {
    for (const t of [x, labels, loss]) t.dispose();
    sums.dispose();
  }
});

const torchScript = fileURLToPath(new URL("../pytorch/nan_ops.py", import.meta.url));
const python = await new Deno.Command("/usr/bin/python3", {
  args: ["-c", "import torch"],
  stderr: "null",
}).output().then(({ code }) => code === 0 ? "/usr/bin/python3" : null, () => null);
if (!python) {
  console.warn("nan_test: PyTorch is not importable (apt-get install python3-torch); skipped");
}

/** Runs tests/pytorch/nan_ops.py on `request`; NaN travels as null both ways. */
async function askTorch(request: Record<string, unknown>): Promise<Record<string, number[]>> {
  const child = new Deno.Command(python!, {
    args: [torchScript],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(request)));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) throw new Error(`nan_ops.py failed:\n${new TextDecoder().decode(stderr)}`);
  const answer = JSON.parse(new TextDecoder().decode(stdout));
  for (const key of Object.keys(answer)) {
    answer[key] = answer[key].map((v: number | null) => v === null ? NaN : v);
  }
  return answer;
}

Deno.test({
  name: "relu, maxPool2d (2x2 and fused) and batch norm with NaN agree with PyTorch itself",
  ignore: python === null,
  fn: async () => {
    const shape = [2, 3, 4, 8];
    const size = shape.reduce((a, b) => a * b, 1);
    // NaN in channel 1 only, at several window positions; channels 0 and 2 stay finite.
    const values = Array.from(Float32Array.from(randomArray(size, 31)));
    for (const at of [32 + 0, 32 + 9, 32 + 18, 32 + 19, 96 + 32 + 27]) values[at] = NaN;
    const gradPool = Array.from(Float32Array.from(randomArray(size / 4, 32)));
    const gradBn = Array.from(Float32Array.from(randomArray(size, 33)));
    const torch = await askTorch({
      x: values.map((v) => Number.isNaN(v) ? null : v),
      shape,
      grad_pool: gradPool,
      grad_bn: gradBn,
    });
    assertNaNClose(await relu(tensor(values, shape)).toArray(), torch.relu, "relu");
    for (const fusedRelu of [false, true]) {
      const x = tensor(values, shape, { requiresGrad: true });
      const pooled = maxPool2d(x, { kernelSize: 2, relu: fusedRelu });
      const expected = fusedRelu
        ? torch.pool.map((v) => v > 0 || Number.isNaN(v) ? v : 0)
        : torch.pool;
      assertNaNClose(await pooled.toArray(), expected, `pool (relu ${fusedRelu})`);
      pooled.backward({ grad: tensor(gradPool, pooled.shape) });
      const dx = fusedRelu
        ? maxPool2dBackwardReference(
          gradPool.map((g, i) => torch.pool[i] > 0 || Number.isNaN(torch.pool[i]) ? g : 0),
          torch.pool_indices,
          shape,
          pooled.shape,
        )
        : torch.pool_grad;
      assertNaNClose(await x.grad!.toArray(), dx, `pool gradient (relu ${fusedRelu})`, 1e-6);
    }
    const x = tensor(values, shape, { requiresGrad: true });
    const weight = ones([3], { requiresGrad: true }), bias = zeros([3], { requiresGrad: true });
    const runningMean = zeros([3]), runningVar = ones([3]);
    const y = batchNorm(x, { weight, bias, runningMean, runningVar, training: true });
    assertNaNClose(await y.toArray(), torch.bn, "batch norm", 1e-4);
    assertNaNClose(await runningMean.toArray(), torch.bn_running_mean, "running mean", 1e-5);
    assertNaNClose(await runningVar.toArray(), torch.bn_running_var, "running var", 1e-4);
    y.backward({ grad: tensor(gradBn, shape) });
    assertNaNClose(await x.grad!.toArray(), torch.bn_grad, "batch norm dx", 1e-4);
    assertNaNClose(await weight.grad!.toArray(), torch.bn_weight_grad, "dweight", 1e-4);
    assertNaNClose(await bias.grad!.toArray(), torch.bn_bias_grad, "dbias", 1e-4);
  },
});
