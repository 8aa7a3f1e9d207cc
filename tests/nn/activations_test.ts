// The activation modules: each equals its op (forward and gradient) and PyTorch's module; maxout
// against its float64 reference with finite differences, on awkward shapes.
import assert from "node:assert/strict";
import {
  ELU,
  GELU,
  Identity,
  LeakyReLU,
  Maxout,
  Sigmoid,
  SiLU,
  Softplus,
  Tanh,
} from "../../nn/modules/activations.ts";
import type { Module } from "../../nn/modules/module.ts";
import { Linear } from "../../nn/modules/linear.ts";
import { LogSoftmax, Sequential, Softmax } from "../../nn/modules/layers.ts";
import { logSoftmax, softmax } from "../../nn/ops/softmax.ts";
import { maxout } from "../../nn/ops/maxout.ts";
import { elu, gelu, leakyRelu, sigmoid, silu, softplus, tanh } from "../../nn/ops/unary.ts";
import { noGrad } from "../../nn/autograd.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { sync } from "../../nn/gpu/stream.ts";
import { Rng } from "../../nn/random.ts";
import { tidy } from "../../nn/scope.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { assertThrows } from "../assert.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";
import { testOp } from "./op_helper.ts";
import { maxoutBackwardReference, maxoutGeometry, maxoutReference } from "./reference/maxout.ts";

await gpuReady();

/** Each activation module, its op, and PyTorch's module (a Python expression). */
const ACTIVATIONS: readonly [string, () => Module, (x: Tensor) => Tensor, string][] = [
  ["Sigmoid", () => new Sigmoid(), sigmoid, "nn.Sigmoid()"],
  ["Tanh", () => new Tanh(), tanh, "nn.Tanh()"],
  ["LeakyReLU", () => new LeakyReLU(), (x) => leakyRelu(x), "nn.LeakyReLU()"],
  [
    "LeakyReLU 0.2",
    () => new LeakyReLU({ negativeSlope: 0.2 }),
    (x) => leakyRelu(x, { negativeSlope: 0.2 }),
    "nn.LeakyReLU(negative_slope=0.2)",
  ],
  ["ELU", () => new ELU(), (x) => elu(x), "nn.ELU()"],
  ["ELU 0.5", () => new ELU({ alpha: 0.5 }), (x) => elu(x, { alpha: 0.5 }), "nn.ELU(alpha=0.5)"],
  ["GELU", () => new GELU(), (x) => gelu(x), "nn.GELU()"],
  [
    "GELU tanh",
    () => new GELU({ approximate: "tanh" }),
    (x) => gelu(x, { approximate: "tanh" }),
    "nn.GELU(approximate='tanh')",
  ],
  ["SiLU", () => new SiLU(), silu, "nn.SiLU()"],
  ["Softplus", () => new Softplus(), (x) => softplus(x), "nn.Softplus()"],
  [
    "Softplus beta 2 threshold 1",
    () => new Softplus({ beta: 2, threshold: 1 }),
    (x) => softplus(x, { beta: 2, threshold: 1 }),
    "nn.Softplus(beta=2, threshold=1)",
  ],
  ["Identity", () => new Identity(), (x) => x.reshape(x.shape), "nn.Identity()"],
  ["Softmax", () => new Softmax(), (x) => softmax(x), "nn.Softmax(dim=-1)"],
  [
    "Softmax dim 0",
    () => new Softmax({ dim: 0 }),
    (x) => softmax(x, { dim: 0 }),
    "nn.Softmax(dim=0)",
  ],
  ["LogSoftmax", () => new LogSoftmax(), (x) => logSoftmax(x), "nn.LogSoftmax(dim=-1)"],
  [
    "LogSoftmax dim 0",
    () => new LogSoftmax({ dim: 0 }),
    (x) => logSoftmax(x, { dim: 0 }),
    "nn.LogSoftmax(dim=0)",
  ],
  [
    "Maxout 3",
    () => new Maxout({ pieces: 3 }),
    (x) => maxout(x, { pieces: 3 }),
    "maxout(3, 1)",
  ],
  [
    "Maxout 2 dim -1",
    () => new Maxout({ pieces: 2, dim: -1 }),
    (x) => maxout(x, { pieces: 2, dim: -1 }),
    "maxout(2, -1)",
  ],
];

const SHAPE = [2, 6, 1, 2];
const X = randomArray(24, 1, -3, 3);
const GRAD = randomArray(24, 2);

/** Output values, shape and input gradient of `f` on X, backpropagating GRAD. */
async function run(f: (x: Tensor) => Tensor) {
  const x = tensor(Float32Array.from(X), SHAPE, { requiresGrad: true });
  const out = tidy(() => {
    const y = f(x);
    y.backward({ grad: tensor(Float32Array.from(GRAD.subarray(0, y.size)), y.shape) });
    return y;
  });
  const result = { values: await out.toArray(), shape: out.shape, grad: await x.grad!.toArray() };
  out.dispose();
  x.grad!.dispose();
  x.dispose();
  return result;
}

Deno.test("each activation module equals its op, forward and gradient", async () => {
  for (const [name, make, op] of ACTIVATIONS) {
    const module = make();
    const byModule = await run((x) => module.forward(x));
    const byOp = await run(op);
    assert.deepEqual(byModule.shape, byOp.shape, name);
    assert.deepEqual(byModule.values, byOp.values, `${name}: forward`);
    assert.deepEqual(byModule.grad, byOp.grad, `${name}: gradient`);
    assert.deepEqual(module.parameters(), [], `${name}: no parameters`);
  }
});

Deno.test("the activation modules equal PyTorch's, forward and gradient", async () => {
  if (skipWithoutTorch("activation modules vs PyTorch")) return;
  const answer = await askTorch<
    Record<string, { values: number[]; shape: number[]; grad: number[] }>
  >("modules.py", {
    activations: {
      x: Array.from(Float32Array.from(X)),
      shape: SHAPE,
      grad: Array.from(Float32Array.from(GRAD)),
      cases: ACTIVATIONS.map(([name, , , module]) => ({ name, module })),
    },
  });
  for (const [name, make] of ACTIVATIONS) {
    const module = make();
    const ours = await run((x) => module.forward(x));
    const torch = answer[name];
    assert.deepEqual(ours.shape, torch.shape, `${name}: shape`);
    assertClose(ours.values, torch.values, { atol: 1e-5, rtol: 1e-5 }, `${name}: forward`);
    assertClose(ours.grad, torch.grad, { atol: 1e-5, rtol: 1e-5 }, `${name}: gradient`);
  }
});

/** testOp of maxout on x of `shape`. */
function maxoutCase(
  shape: readonly number[],
  pieces: number,
  dim?: number,
  data?: ArrayLike<number>,
) {
  const d = (dim ?? 1) < 0 ? (dim ?? 1) + shape.length : dim ?? 1;
  const g = maxoutGeometry(shape, pieces, d);
  const outputShape = shape.map((n, i) => i === d ? n / pieces : n);
  return testOp({
    name: `maxout [${shape}] pieces ${pieces} dim ${dim ?? "default"}`,
    inputs: [data ? { shape, data } : shape],
    gpu: ([x]) => dim === undefined ? maxout(x, { pieces }) : maxout(x, { pieces, dim }),
    reference: ([x]) => maxoutReference(x, g),
    backward: ([x], grad) => [maxoutBackwardReference(x, grad, g)],
    outputShape,
    // Ties and NaN (given data) have no finite differences: the reference backward alone; so do
    // large shapes, where two values of a group come within the step of each other.
    finiteDifferenceLimit: data ? 0 : 1000,
  });
}

Deno.test("maxout matches its reference, forward and backward, on awkward shapes", async () => {
  await maxoutCase([2, 6], 3); // features
  await maxoutCase([2, 6, 3, 3], 3); // channels
  await maxoutCase([2, 6, 3, 3], 2);
  await maxoutCase([1, 6, 3, 3], 3); // batch 1
  await maxoutCase([1, 10, 1, 3], 5);
  await maxoutCase([3, 5, 7], 7, -1); // negative dim, sizes not multiples of 4
  await maxoutCase([3, 14, 5], 2, -2);
  await maxoutCase([9], 3, 0); // 1-D
  await maxoutCase([6, 1, 5], 3, 0); // the first dim
  await maxoutCase([1, 5, 1], 5); // size-1 dims, one group
  await maxoutCase([2, 5], 1); // one piece: the identity
  await maxoutCase([5, 300], 3); // past one workgroup (no finite differences)
});

Deno.test("maxout: ties give the first maximum the gradient; NaN wins its group", async () => {
  // Groups of 3 along dim 1: ties (2, 2, 1), (-1, -1, -1), NaN in the middle and first.
  await maxoutCase([1, 12], 3, 1, [2, 2, 1, -1, -1, -1, 0, NaN, 5, NaN, 7, NaN]);
  const x = tensor([2, 2, 1, 0, NaN, 5], [1, 6], { requiresGrad: true });
  const out = maxout(x, { pieces: 3 });
  assertClose(await out.toArray(), [2, NaN], { equalNan: true });
  const grad = tensor([10, 20], [1, 2]);
  out.backward({ grad });
  assert.deepEqual([...await x.grad!.toArray()], [10, 0, 0, 0, 20, 0]);
  out.dispose();
  grad.dispose();
  x.grad!.dispose();
  x.dispose();
});

Deno.test("maxout of an empty tensor is empty, gradient included", async () => {
  const x = tensor(new Float32Array(0), [0, 6], { requiresGrad: true });
  const out = maxout(x, { pieces: 3 });
  assert.deepEqual(out.shape, [0, 2]);
  assert.equal((await out.toArray()).length, 0);
  const grad = tensor(new Float32Array(0), [0, 2]);
  out.backward({ grad });
  assert.deepEqual(x.grad!.shape, [0, 6]);
  for (const t of [out, grad, x.grad!, x]) t.dispose();
});

Deno.test("maxout: clear errors", () => {
  const x = tensor(new Float32Array(12), [2, 6]);
  assertThrows(
    () => maxout(x, { pieces: 4 }),
    /maxout: dim 1 of x \[2, 6\] has size 6, not a multiple of pieces 4/,
  );
  assertThrows(() => maxout(x, { pieces: 0 }), /maxout: pieces must be an integer >= 1, got 0/);
  assertThrows(() => maxout(x, { pieces: 2, dim: 2 }), /maxout: dim 2 is out of range.*\[2, 6\]/);
  const scalar = tensor([1], []);
  assertThrows(() => maxout(scalar, { pieces: 1 }), /maxout: needs a tensor with at least one/);
  const ints = tensor(new Int32Array(6), [1, 6], { dtype: "i32" });
  assertThrows(() => maxout(ints, { pieces: 2 }), /maxout: needs an f32 tensor, got i32/);
  assertThrows(() => new Maxout({ pieces: 1.5 }), /Maxout: pieces must be an integer >= 1/);
  assertThrows(() => new Maxout({ pieces: 4 }).forward(x), /maxout: dim 1 .* pieces 4/);
  assertThrows(
    // @ts-expect-error: a wrong value, on purpose
    () => new GELU({ approximate: "fast" }),
    /GELU: approximate must be "none" or "tanh", got fast/,
  );
  assertThrows(() => new LeakyReLU({ negativeSlope: NaN }), /LeakyReLU: negativeSlope must be/);
  for (const t of [x, scalar, ints]) t.dispose();
});

Deno.test("a Maxout network leaves nothing behind, in noGrad and after backward", async () => {
  const net = new Sequential(
    new Linear(5, 12, { rng: new Rng(3) }),
    new Maxout({ pieces: 3 }),
    new Linear(4, 2, { rng: new Rng(4) }),
  );
  const x = tensor(Float32Array.from(randomArray(15, 5)), [3, 5]);
  await sync();
  const before = memoryStats();
  noGrad(() => net.forward(x)).dispose();
  const out = net.forward(x);
  const grad = tensor(Float32Array.from(randomArray(6, 6)), [3, 2]);
  out.backward({ grad });
  out.dispose();
  grad.dispose();
  for (const p of net.parameters()) {
    assert.ok(p.grad, "every parameter has a gradient");
    p.grad.dispose();
    p.grad = null;
  }
  await sync();
  const after = memoryStats();
  assert.deepEqual(
    [after.liveBuffers, after.liveBytes],
    [before.liveBuffers, before.liveBytes],
    "live buffers and bytes",
  );
  net.dispose();
  x.dispose();
});
