import assert from "node:assert/strict";
import {
  adagradStepReference,
  adamStepReference,
  adamWStepReference,
  rmspropStepReference,
  sgdStepReference,
} from "./reference/optimizers.ts";
import { RMSprop } from "../../train/optim/rmsprop.ts";
import { Adagrad } from "../../train/optim/adagrad.ts";
import { compiledKernelCount } from "../../nn/gpu/program.ts";
import { gpu } from "../../nn/gpu/device.ts";
import { decodeSafetensors, encodeSafetensors } from "../../nn/safetensors.ts";
import { tidy } from "../../nn/scope.ts";
import { streamStats } from "../../nn/gpu/stream.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { Adam, AdamW, type Optimizer, type OptimizerStateDict, SGD } from "../../mod.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";

await gpuReady();

/** Shapes of the parameters of every case: odd sizes, a scalar-like one, one over a workgroup. */
const SHAPES = [[7], [3, 5], [1], [2, 301]];
const STEPS = 5;
/** Parameter 2 gets no gradient before this step; parameter 3 never does (in `runCase`). */
const LATE_START = 2;

function setGrad(param: Tensor, data: ArrayLike<number>): void {
  param.grad?.dispose();
  param.grad = tensor(Float32Array.from(data), param.shape);
}

/** As SHAPES, with parameter 1 large enough for the update kernels to read textures. */
const LARGE_SHAPES = [[7], [97, 89], [1], [2, 301]];

function gradFor(index: number, step: number, shapes = SHAPES): Float64Array {
  return randomArray(shapes[index].reduce((a, b) => a * b, 1), 1000 + 17 * step + index);
}

function f32(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(values));
}

async function read(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.toArray());
}

interface ReferenceState {
  param: Float64Array;
  buffers: Record<string, Float64Array | null>;
  step: number;
}

type ReferenceStep = (state: ReferenceState, grad: Float64Array) => ReferenceState;

/**
 * Runs `STEPS` steps of `optimizer` on GPU parameters, parameter 2 getting gradients only from
 * step LATE_START and parameter 3 never, and compares parameters and state with the reference.
 */
async function runCase(
  make: (params: Tensor[]) => Optimizer,
  reference: ReferenceStep,
  stateNames: string[],
  shapes = SHAPES,
  stateAtol = 1e-6,
): Promise<void> {
  const initial = shapes.map((shape, i) =>
    f32(randomArray(shape.reduce((a, b) => a * b, 1), 50 + i))
  );
  const params = initial.map((data, i) =>
    tensor(Float32Array.from(data), shapes[i], { requiresGrad: true })
  );
  const optimizer = make(params);
  let expected: ReferenceState[] = initial.map((param) => ({ param, buffers: {}, step: 0 }));
  for (let step = 0; step < STEPS; step++) {
    const withGrad = [0, 1, ...(step >= LATE_START ? [2] : [])];
    for (const i of withGrad) setGrad(params[i], gradFor(i, step, shapes));
    const before = streamStats();
    const kernelsBefore = compiledKernelCount();
    optimizer.step();
    const after = streamStats();
    assert.equal(after.readbacks, before.readbacks, "step() must not read the GPU back");
    const dispatches = after.dispatches - before.dispatches;
    // Updates read from storage with the same step scalars share one dispatch (a multi-tensor
    // update); those read through textures, or with other scalars, take their own.
    assert.ok(
      dispatches >= 1 && dispatches <= withGrad.length,
      `at most one dispatch per param, got ${dispatches} for ${withGrad.length}`,
    );
    if (shapes === SHAPES && step < LATE_START) {
      assert.equal(dispatches, 1, "parameters 0 and 1 (small, same step) share one dispatch");
    }
    // From the step after parameter 2's second, the same parameters share dispatches as before.
    if (step > LATE_START + 1) {
      assert.equal(compiledKernelCount(), kernelsBefore, "new step scalars compile nothing");
    }
    expected = expected.map((state, i) =>
      withGrad.includes(i) ? reference(state, f32(gradFor(i, step, shapes))) : state
    );
  }
  const dict = optimizer.stateDict();
  assert.deepEqual(dict.paramSteps, [STEPS, STEPS, STEPS - LATE_START, 0]);
  assert.equal(dict.step, STEPS);
  assert.deepEqual(
    Object.keys(dict.state).sort(),
    [0, 1, 2].flatMap((i) => stateNames.map((name) => `${i}.${name}`)).sort(),
  );
  for (const [i, param] of params.entries()) {
    const actual = await read(param);
    if (i === 3) {
      assert.deepEqual(actual, initial[3], "a parameter without gradient is left alone");
      continue;
    }
    assertClose(actual, expected[i].param, { atol: 2e-6, rtol: 1e-5 }, `param ${i}`);
    for (const name of stateNames) {
      assertClose(
        await read(dict.state[`${i}.${name}`]),
        expected[i].buffers[name]!,
        { atol: stateAtol, rtol: 1e-5 },
        `${i}.${name}`,
      );
    }
  }
  optimizer.zeroGrad();
  optimizer.dispose();
  for (const param of params) param.dispose();
}

function sgdReference(options: Parameters<typeof sgdStepReference>[1]): ReferenceStep {
  return (state, grad) => {
    const out = sgdStepReference({
      param: state.param,
      grad,
      momentumBuffer: state.buffers.momentum_buffer,
    }, options);
    return {
      param: out.param,
      buffers: { momentum_buffer: out.momentumBuffer },
      step: state.step + 1,
    };
  };
}

function adamReference(
  options: Parameters<typeof adamStepReference>[1],
  step = adamStepReference,
): ReferenceStep {
  return (state, grad) => {
    const out = step({
      param: state.param,
      grad,
      expAvg: state.buffers.exp_avg,
      expAvgSq: state.buffers.exp_avg_sq,
      maxExpAvgSq: state.buffers.max_exp_avg_sq,
      step: state.step,
    }, options);
    const buffers: Record<string, Float64Array | null> = {
      exp_avg: out.expAvg,
      exp_avg_sq: out.expAvgSq,
    };
    if (out.maxExpAvgSq) buffers.max_exp_avg_sq = out.maxExpAvgSq;
    return { param: out.param, buffers, step: out.step };
  };
}

Deno.test("the references reproduce hand-computed updates", () => {
  // Plain SGD: p - lr * g, twice.
  let sgd = sgdStepReference({ param: [1, -2], grad: [0.5, 0.25] }, { lr: 0.1 });
  assertClose(sgd.param, [0.95, -2.025]);
  assert.equal(sgd.momentumBuffer, null);
  // Momentum 0.9, constant gradient 1: buffers 1, 1.9, 2.71; params 0.9, 0.71, 0.439.
  let param: ArrayLike<number> = [1];
  let buffer: Float64Array | null = null;
  for (const want of [0.9, 0.71, 0.439]) {
    sgd = sgdStepReference({ param, grad: [1], momentumBuffer: buffer }, {
      lr: 0.1,
      momentum: 0.9,
    });
    [param, buffer] = [sgd.param, sgd.momentumBuffer];
    assertClose(param, [want], { atol: 1e-12, rtol: 0 });
  }
  // Dampening 0.5: first buffer = g = 1 (not damped), then 0.9 + 0.5 = 1.4.
  const damped1 = sgdStepReference({ param: [0], grad: [1] }, {
    lr: 1,
    momentum: 0.9,
    dampening: 0.5,
  });
  const damped2 = sgdStepReference(
    { param: damped1.param, grad: [1], momentumBuffer: damped1.momentumBuffer },
    { lr: 1, momentum: 0.9, dampening: 0.5 },
  );
  assertClose(damped2.momentumBuffer!, [1.4], { atol: 1e-12, rtol: 0 });
  assertClose(damped2.param, [-2.4], { atol: 1e-12, rtol: 0 });
  // Nesterov, first step: buf = g = 2, d = g + 0.9 * buf = 3.8; weight decay 0.5 on p = 2 adds 1.
  const nesterov = sgdStepReference({ param: [2], grad: [1] }, {
    lr: 0.1,
    momentum: 0.9,
    nesterov: true,
    weightDecay: 0.5,
  });
  assertClose(nesterov.param, [2 - 0.38], { atol: 1e-12, rtol: 0 });
  // Adam's first step is lr * g / (|g| + eps): bias correction cancels the moments' decay.
  const adam = adamStepReference({ param: [1, 1], grad: [2, -0.5] }, { lr: 0.01 });
  assertClose(adam.param, [1 - 0.01 * 2 / (2 + 1e-8), 1 + 0.01 * 0.5 / (0.5 + 1e-8)], {
    atol: 1e-15,
    rtol: 0,
  });
  assertClose(adam.expAvg, [0.2, -0.05], { atol: 1e-15, rtol: 0 });
  assertClose(adam.expAvgSq, [0.004, 0.00025], { atol: 1e-15, rtol: 0 });
  // Second step with the same gradient g: m = 0.19 g, v = 0.001999 g^2, corrections 0.19 and
  // 0.001999: the update is again lr * g / (|g| + eps).
  const adam2 = adamStepReference({
    param: adam.param,
    grad: [2, -0.5],
    expAvg: adam.expAvg,
    expAvgSq: adam.expAvgSq,
    step: 1,
  }, { lr: 0.01 });
  assertClose(adam2.param, [0.98, 1.02], { atol: 1e-9, rtol: 0 });
  // AdamW with wd 0.1, lr 0.01: p is first scaled by 1 - 0.001.
  const adamw = adamWStepReference({ param: [1], grad: [2] }, { lr: 0.01, weightDecay: 0.1 });
  assertClose(adamw.param, [0.999 - 0.01 * 2 / (2 + 1e-8)], { atol: 1e-15, rtol: 0 });
  // Adam with L2 wd 0.5 on p = 1: g = 2 + 0.5; first step still moves by lr.
  const adamL2 = adamStepReference({ param: [1], grad: [-0.75] }, {
    lr: 0.01,
    weightDecay: 0.5,
  });
  assertClose(adamL2.param, [1 + 0.01 * 0.25 / (0.25 + 1e-8)], { atol: 1e-15, rtol: 0 });
});

Deno.test("GPU SGD matches hand-computed values", async () => {
  const p = tensor([1, -2], [2], { requiresGrad: true });
  const q = tensor([1], [1], { requiresGrad: true });
  const sgd = new SGD([p], { lr: 0.1 });
  const momentum = new SGD([q], { lr: 0.1, momentum: 0.9 });
  for (let k = 0; k < 3; k++) {
    setGrad(p, [0.5, 0.25]);
    setGrad(q, [1]);
    sgd.step();
    momentum.step();
  }
  assertClose(await p.toArray(), [0.85, -2.075], { atol: 1e-6, rtol: 0 });
  assertClose(await q.toArray(), [0.439], { atol: 1e-6, rtol: 0 });
  sgd.zeroGrad();
  momentum.zeroGrad();
  momentum.dispose();
  p.dispose();
  q.dispose();
});

Deno.test("GPU Adam and AdamW match hand-computed first steps", async () => {
  const p = tensor([1, 1], [2], { requiresGrad: true });
  const q = tensor([1], [1], { requiresGrad: true });
  const adam = new Adam([p], { lr: 0.01 });
  const adamw = new AdamW([q], { lr: 0.01, weightDecay: 0.1 });
  setGrad(p, [2, -0.5]);
  setGrad(q, [2]);
  adam.step();
  adamw.step();
  assertClose(await p.toArray(), [0.99, 1.01], { atol: 1e-7, rtol: 0 });
  assertClose(await q.toArray(), [0.989], { atol: 1e-7, rtol: 0 });
  adam.step();
  assertClose(await p.toArray(), [0.98, 1.02], { atol: 1e-7, rtol: 0 });
  for (const o of [adam, adamw]) {
    o.zeroGrad();
    o.dispose();
  }
  p.dispose();
  q.dispose();
});

const SGD_CASES: [string, ConstructorParameters<typeof SGD>[1] & { lr: number }][] = [
  ["plain", { lr: 0.1 }],
  ["momentum", { lr: 0.05, momentum: 0.9 }],
  ["momentum + dampening", { lr: 0.05, momentum: 0.8, dampening: 0.3 }],
  ["nesterov + weight decay", { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01 }],
  ["weight decay, no momentum", { lr: 0.2, weightDecay: 0.1 }],
];

for (const [label, options] of SGD_CASES) {
  Deno.test(`GPU SGD (${label}) matches the reference over ${STEPS} steps`, async () => {
    await runCase(
      (params) => new SGD(params, options),
      sgdReference(options),
      options.momentum ? ["momentum_buffer"] : [],
    );
  });
}

for (const [label, options] of SGD_CASES) {
  Deno.test(`GPU SGD (${label}) on a large parameter (texture inputs) matches the reference`, async () => {
    await runCase(
      (params) => new SGD(params, options),
      sgdReference(options),
      options.momentum ? ["momentum_buffer"] : [],
      LARGE_SHAPES,
    );
  });
}

const ADAM_CASES: [string, ConstructorParameters<typeof Adam>[1] & { lr: number }][] = [
  ["defaults, lr 0.01", { lr: 0.01 }],
  ["L2 weight decay, custom betas", { lr: 0.003, betas: [0.8, 0.99], weightDecay: 0.1 }],
  ["AMSGrad, weight decay", { lr: 0.01, weightDecay: 0.1, amsgrad: true }],
];

function adamNames(options: { amsgrad?: boolean }): string[] {
  return ["exp_avg", "exp_avg_sq", ...(options.amsgrad ? ["max_exp_avg_sq"] : [])];
}

for (const [label, options] of ADAM_CASES) {
  Deno.test(`GPU Adam (${label}) matches the reference over ${STEPS} steps`, async () => {
    const { betas = [0.9, 0.999], ...rest } = options;
    await runCase(
      (params) => new Adam(params, options),
      adamReference({ ...rest, beta1: betas[0], beta2: betas[1] }),
      adamNames(options),
    );
  });
}

for (const [label, options] of ADAM_CASES) {
  Deno.test(`GPU AdamW (${label}) matches the reference over ${STEPS} steps`, async () => {
    const { betas = [0.9, 0.999], ...rest } = options;
    await runCase(
      (params) => new AdamW(params, options),
      adamReference({ ...rest, beta1: betas[0], beta2: betas[1] }, adamWStepReference),
      adamNames(options),
    );
  });
}

for (const [label, options] of ADAM_CASES) {
  Deno.test(`GPU Adam and AdamW (${label}) on a large parameter (texture inputs) match the reference`, async () => {
    const { betas = [0.9, 0.999], ...rest } = options;
    const reference = { ...rest, beta1: betas[0], beta2: betas[1] };
    const names = adamNames(options);
    await runCase(
      (params) => new Adam(params, options),
      adamReference(reference),
      names,
      LARGE_SHAPES,
    );
    await runCase(
      (params) => new AdamW(params, options),
      adamReference(reference, adamWStepReference),
      names,
      LARGE_SHAPES,
    );
  });
}

Deno.test("Adam over CNN-BN's ten parameters: as few dispatches as the storage-binding limit allows, the reference's values", async () => {
  // conv1 w, b; bn1 w, b; conv2 w, b; bn2 w, b; fc w, b: the parameter, its gradient and its
  // two moments take 4 storage bindings each (gradients stay storage: bound as uniforms in one
  // dispatch, lavapipe's queue thread crashed, see docs/DESIGN.md).
  const shapes = [[10, 1, 5, 5], [10], [10], [10], [20, 10, 5, 5], [20], [20], [20], [10, 320], [
    10,
  ]];
  const initial = shapes.map((shape, i) =>
    f32(randomArray(shape.reduce((a, b) => a * b, 1), 700 + i))
  );
  const params = initial.map((data, i) =>
    tensor(Float32Array.from(data), shapes[i], { requiresGrad: true })
  );
  const optimizer = new Adam(params, { lr: 0.01 });
  const reference = adamReference({ lr: 0.01 });
  let expected: ReferenceState[] = initial.map((param) => ({ param, buffers: {}, step: 0 }));
  const storageLimit = gpu().limits.maxStorageBuffersPerShaderStage;
  const wanted = Math.ceil(shapes.length / Math.floor(storageLimit / 4));
  for (let step = 0; step < 3; step++) {
    const grads = shapes.map((_, i) => randomArray(params[i].size, 900 + 13 * step + i));
    params.forEach((param, i) => setGrad(param, grads[i]));
    const before = streamStats().dispatches;
    optimizer.step();
    assert.equal(streamStats().dispatches - before, wanted, "dispatches of one step()");
    expected = expected.map((state, i) => reference(state, f32(grads[i])));
  }
  for (const [i, param] of params.entries()) {
    assertClose(await read(param), expected[i].param, { atol: 2e-6, rtol: 1e-5 }, `param ${i}`);
  }
  optimizer.zeroGrad();
  optimizer.dispose();
  for (const param of params) param.dispose();
});

Deno.test("AdamW's default weight decay is 1e-2 and Adam's is 0", () => {
  const p = tensor([1]);
  assert.equal(new AdamW([p]).weightDecay, 1e-2);
  assert.equal(new Adam([p]).weightDecay, 0);
  assert.deepEqual(new Adam([p]).betas, [0.9, 0.999]);
  assert.equal(new Adam([p]).lr, 1e-3);
  p.dispose();
});

Deno.test("zeroGrad disposes every gradient and sets it to null", () => {
  const a = tensor([1, 2], [2], { requiresGrad: true });
  const b = tensor([3], [1], { requiresGrad: true });
  setGrad(a, [1, 1]);
  const grad = a.grad!;
  const sgd = new SGD([a, b], { lr: 0.1 });
  sgd.zeroGrad();
  assert.equal(a.grad, null);
  assert.equal(b.grad, null);
  assert.ok(grad.isDisposed);
  sgd.step(); // nothing has a gradient: nothing happens
  assert.deepEqual(sgd.stateDict().paramSteps, [0, 0]);
  a.dispose();
  b.dispose();
});

Deno.test("optimizers reject invalid options as PyTorch does", () => {
  const p = tensor([1]);
  assert.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), /Nesterov momentum requires/);
  assert.throws(
    () => new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }),
    /Nesterov momentum requires a momentum and zero dampening/,
  );
  assert.throws(() => new SGD([p], { lr: -1 }), /Invalid learning rate: -1/);
  assert.throws(() => new SGD([p], { momentum: -0.5 }), /Invalid momentum value: -0.5/);
  assert.throws(() => new SGD([p], { weightDecay: -1 }), /Invalid weight_decay value: -1/);
  assert.throws(() => new Adam([p], { betas: [1, 0.999] }), /Invalid beta parameter at index 0/);
  assert.throws(() => new Adam([p], { betas: [0.9, -0.1] }), /Invalid beta parameter at index 1/);
  assert.throws(() => new Adam([p], { eps: -1 }), /Invalid epsilon value: -1/);
  assert.throws(() => new AdamW([p], { weightDecay: -1 }), /Invalid weight_decay value/);
  assert.throws(() => new Adam([]), /empty parameter list/);
  assert.throws(() => new Adam([p, p]), /parameter 1 appears more than once/);
  const labels = tensor(new Int32Array([1]));
  assert.throws(() => new Adam([labels]), /parameter 0 is i32/);
  const sgd = new SGD([p]);
  assert.equal(sgd.lr, 1e-3);
  assert.throws(() => (sgd.lr = Number.NaN), /Invalid learning rate: NaN/);
  sgd.lr = 0.5;
  assert.equal(sgd.lr, 0.5);
  p.grad = tensor([1, 2]);
  assert.throws(() => sgd.step(), /parameter 0 of shape \[1\] has a f32 gradient of shape \[2\]/);
  sgd.zeroGrad();
  labels.dispose();
  p.dispose();
});

Deno.test("state is created lazily, survives tidy, and dispose() frees it", async () => {
  const p = tensor([1, 2, 3], [3], { requiresGrad: true });
  const adam = new Adam([p], { lr: 0.1 });
  assert.deepEqual(Object.keys(adam.stateDict().state), []);
  tidy(() => {
    setGrad(p, [1, 1, 1]);
    adam.step();
  });
  const { state } = adam.stateDict();
  assertClose(await state["0.exp_avg"].toArray(), [0.1, 0.1, 0.1], { atol: 1e-7, rtol: 0 });
  adam.dispose();
  assert.ok(state["0.exp_avg"].isDisposed && state["0.exp_avg_sq"].isDisposed);
  assert.throws(() => adam.step(), /Adam.step\(\): the optimizer was disposed/);
  p.grad?.dispose();
  p.dispose();
});

/** Saves an optimizer's state through safetensors bytes, as a checkpoint would. */
function throughBytes(dict: OptimizerStateDict, arrays: Record<string, Float32Array>) {
  const bytes = encodeSafetensors(
    Object.fromEntries(
      Object.entries(arrays).map(([name, data]) => [name, {
        shape: [...dict.state[name].shape],
        data,
      }]),
    ),
    {
      optimizer: JSON.stringify({
        optimizer: dict.optimizer,
        step: dict.step,
        paramSteps: dict.paramSteps,
        paramGroups: dict.paramGroups,
      }),
    },
  );
  const decoded = decodeSafetensors(bytes);
  const saved = JSON.parse(decoded.metadata.optimizer);
  const state = Object.fromEntries(
    Object.entries(decoded.tensors).map(([name, t]) => [name, tensor(t.data, t.shape)]),
  );
  return { ...saved, state } as OptimizerStateDict;
}

for (
  const [label, make] of [
    ["SGD with momentum", (ps: Tensor[]) => new SGD(ps, { lr: 0.05, momentum: 0.9 })],
    ["Adam", (ps: Tensor[]) => new Adam(ps, { lr: 0.01, weightDecay: 0.01 })],
    ["AdamW", (ps: Tensor[]) => new AdamW(ps, { lr: 0.01 })],
  ] as const
) {
  Deno.test(`${label}: a state dict saved through safetensors resumes identically`, async () => {
    const initial = SHAPES.slice(0, 3).map((shape, i) =>
      Float32Array.from(randomArray(shape.reduce((a, b) => a * b, 1), 70 + i))
    );
    const a = initial.map((data, i) => tensor(data, SHAPES[i], { requiresGrad: true }));
    const first = make(a);
    for (let step = 0; step < 3; step++) {
      for (const i of step === 0 ? [0, 1] : [0, 1, 2]) setGrad(a[i], gradFor(i, step));
      first.step();
    }
    const dict = first.stateDict();
    const arrays: Record<string, Float32Array> = {};
    for (const [name, t] of Object.entries(dict.state)) arrays[name] = await t.toArray();
    const saved = throughBytes(dict, arrays);
    const b = await Promise.all(
      a.map(async (p, i) => tensor(await p.toArray(), SHAPES[i], { requiresGrad: true })),
    );
    const second = make(b);
    second.lr = 123; // restored from the state dict
    second.loadStateDict(saved);
    for (const t of Object.values(saved.state)) t.dispose(); // the optimizer copied them
    assert.equal(second.lr, first.lr);
    assert.deepEqual(second.stateDict().paramSteps, dict.paramSteps);
    for (let step = 3; step < 5; step++) {
      for (const [i, p] of a.entries()) {
        setGrad(p, gradFor(i, step));
        setGrad(b[i], gradFor(i, step));
      }
      first.step();
      second.step();
    }
    for (const [i, p] of a.entries()) {
      assert.deepEqual(await b[i].toArray(), await p.toArray(), `param ${i} after resuming`);
    }
    const resumed = second.stateDict().state;
    for (const [name, t] of Object.entries(first.stateDict().state)) {
      assert.deepEqual(await resumed[name].toArray(), await t.toArray(), name);
    }
    for (const o of [first, second]) {
      o.zeroGrad();
      o.dispose();
    }
    for (const p of [...a, ...b]) p.dispose();
  });
}

Deno.test("loadStateDict rejects another optimizer's or mis-shaped state, changing nothing", async () => {
  const p = tensor([1, 2, 3], [3], { requiresGrad: true });
  const q = tensor([4], [1], { requiresGrad: true });
  const adam = new Adam([p, q], { lr: 0.1 });
  setGrad(p, [1, 2, 3]);
  setGrad(q, [1]);
  adam.step();
  const dict = adam.stateDict();
  const sgd = new SGD([p, q], { lr: 0.1, momentum: 0.9 });
  assert.throws(() => sgd.loadStateDict(dict), /state dict is from Adam, not SGD/);
  const other = new Adam([p, q], { lr: 0.5, betas: [0.5, 0.5] });
  const wrong = tensor([0, 0], [2]);
  assert.throws(
    () =>
      other.loadStateDict({
        ...dict,
        state: { ...dict.state, "0.exp_avg": wrong, "7.exp_avg": wrong },
        paramGroups: [{ ...dict.paramGroups[0], betas: [0.25, 0.999] }],
      }),
    {
      message: "Adam.loadStateDict: unexpected: 7.exp_avg; wrong shape: 0.exp_avg is [2] in the " +
        "file, the model needs [3]",
    },
  );
  assert.deepEqual(other.betas, [0.5, 0.5]);
  assert.equal(other.lr, 0.5);
  const { "1.exp_avg_sq": _, ...missing } = dict.state;
  assert.throws(() => other.loadStateDict({ ...dict, state: missing }), /missing: 1.exp_avg_sq/);
  assert.throws(
    () => other.loadStateDict({ ...dict, paramSteps: [1] }),
    /paramSteps must be 2 integers/,
  );
  assert.throws(
    () =>
      other.loadStateDict({ ...dict, paramGroups: [{ ...dict.paramGroups[0], betas: [0.9, 2] }] }),
    /Invalid beta parameter at index 1: 2/,
  );
  other.loadStateDict(dict);
  assert.deepEqual(other.betas, [0.9, 0.999]);
  assert.deepEqual(
    await other.stateDict().state["0.exp_avg"].toArray(),
    await dict.state["0.exp_avg"].toArray(),
  );
  for (const o of [adam, sgd, other]) o.dispose();
  adam.zeroGrad();
  for (const t of [p, q, wrong]) t.dispose();
});

function rmspropReference(options: Parameters<typeof rmspropStepReference>[1]): ReferenceStep {
  return (state, grad) => {
    const out = rmspropStepReference({
      param: state.param,
      grad,
      squareAvg: state.buffers.square_avg,
      momentumBuffer: state.buffers.momentum_buffer,
      gradAvg: state.buffers.grad_avg,
    }, options);
    const buffers: Record<string, Float64Array | null> = { square_avg: out.squareAvg };
    if (out.momentumBuffer) buffers.momentum_buffer = out.momentumBuffer;
    if (out.gradAvg) buffers.grad_avg = out.gradAvg;
    return { param: out.param, buffers, step: state.step + 1 };
  };
}

function adagradReference(options: Parameters<typeof adagradStepReference>[1]): ReferenceStep {
  return (state, grad) => {
    const out = adagradStepReference({
      param: state.param,
      grad,
      sum: state.buffers.sum,
      step: state.step,
    }, options);
    return { param: out.param, buffers: { sum: out.sum }, step: out.step };
  };
}

Deno.test("RMSprop and Adagrad: references and GPU match hand-computed first steps", async () => {
  // RMSprop's first step: v = (1-α)·g² = 0.01·g², so p moves by lr·g / (0.1·|g|) = 10·lr·sign(g).
  const r = rmspropStepReference({ param: [1, 1], grad: [2, -0.5] }, { lr: 0.01, eps: 0 });
  assertClose(r.param, [0.9, 1.1], { atol: 1e-12, rtol: 0 });
  assertClose(r.squareAvg, [0.04, 0.0025], { atol: 1e-12, rtol: 0 });
  // Centered: ḡ = 0.01·g, v - ḡ² = 0.01·g² - 0.0001·g² = 0.0099·g².
  const c = rmspropStepReference({ param: [0], grad: [1] }, { lr: 1, eps: 0, centered: true });
  assertClose(c.param, [-1 / Math.sqrt(0.0099)], { atol: 1e-12, rtol: 0 });
  // Momentum 0.5, twice the same g = 1 (eps 0): b1 = 10, v2 = 0.0199, b2 = 5 + 1/sqrt(0.0199).
  const m1 = rmspropStepReference({ param: [0], grad: [1] }, { lr: 1, eps: 0, momentum: 0.5 });
  const m2 = rmspropStepReference(
    { param: m1.param, grad: [1], squareAvg: m1.squareAvg, momentumBuffer: m1.momentumBuffer },
    { lr: 1, eps: 0, momentum: 0.5 },
  );
  assertClose(m2.momentumBuffer!, [5 + 1 / Math.sqrt(0.0199)], { atol: 1e-9, rtol: 0 });
  // Adagrad's first step: sum = g², so p moves by lr·sign(g); with lrDecay 1 the second step's
  // lr halves: sum = 2g², p moves by (lr/2)·g/(sqrt(2)|g|).
  const a1 = adagradStepReference({ param: [1, 1], grad: [2, -0.5] }, { lr: 0.1, lrDecay: 1 });
  assertClose(a1.param, [0.9, 1.1], { atol: 1e-9, rtol: 0 });
  const a2 = adagradStepReference(
    { param: a1.param, grad: [2, -0.5], sum: a1.sum, step: 1 },
    { lr: 0.1, lrDecay: 1 },
  );
  assertClose(a2.param, [0.9 - 0.05 / Math.SQRT2, 1.1 + 0.05 / Math.SQRT2], {
    atol: 1e-9,
    rtol: 0,
  });
  // Initial accumulator 3, g = 1: p moves by lr / 2.
  const init = adagradStepReference({ param: [0], grad: [1] }, {
    lr: 1,
    initialAccumulatorValue: 3,
  });
  assertClose(init.param, [-0.5], { atol: 1e-9, rtol: 0 });

  const p = tensor([1, 1], [2], { requiresGrad: true });
  const q = tensor([1, 1], [2], { requiresGrad: true });
  const rmsprop = new RMSprop([p], { lr: 0.01, eps: 0 });
  const adagrad = new Adagrad([q], { lr: 0.1 });
  setGrad(p, [2, -0.5]);
  setGrad(q, [2, -0.5]);
  rmsprop.step();
  adagrad.step();
  assertClose(await p.toArray(), [0.9, 1.1], { atol: 1e-6, rtol: 0 });
  assertClose(await q.toArray(), [0.9, 1.1], { atol: 1e-6, rtol: 0 });
  for (const o of [rmsprop, adagrad]) {
    o.zeroGrad();
    o.dispose();
  }
  p.dispose();
  q.dispose();
});

const RMSPROP_CASES: [string, ConstructorParameters<typeof RMSprop>[1] & object][] = [
  ["defaults", {}],
  ["momentum", { lr: 0.003, momentum: 0.9 }],
  ["centered + weight decay", { lr: 0.002, centered: true, weightDecay: 0.1 }],
  ["centered + momentum, alpha 0.9, eps 1e-4", {
    lr: 0.001,
    alpha: 0.9,
    eps: 1e-4,
    momentum: 0.5,
    centered: true,
  }],
];

function rmspropNames(options: RMSpropOptionsLike): string[] {
  return [
    "square_avg",
    ...(options.momentum ? ["momentum_buffer"] : []),
    ...(options.centered ? ["grad_avg"] : []),
  ];
}

type RMSpropOptionsLike = { momentum?: number; centered?: boolean };

for (const [label, options] of RMSPROP_CASES) {
  for (const [size, shapes] of [["", SHAPES], [" on a large parameter", LARGE_SHAPES]] as const) {
    Deno.test(`GPU RMSprop (${label})${size} matches the reference over ${STEPS} steps`, async () => {
      await runCase(
        (params) => new RMSprop(params, options),
        rmspropReference(options),
        rmspropNames(options),
        shapes,
        // Momentum buffers sum terms g / avg of size ~10 that can cancel: f32 rounding of ~1e-6
        // relative to those terms.
        2e-5,
      );
    });
  }
}

const ADAGRAD_CASES: [string, ConstructorParameters<typeof Adagrad>[1] & object][] = [
  ["defaults", {}],
  ["lr decay, weight decay, initial accumulator", {
    lr: 0.05,
    lrDecay: 0.1,
    weightDecay: 0.05,
    initialAccumulatorValue: 0.5,
    eps: 1e-6,
  }],
];

for (const [label, options] of ADAGRAD_CASES) {
  for (const [size, shapes] of [["", SHAPES], [" on a large parameter", LARGE_SHAPES]] as const) {
    Deno.test(`GPU Adagrad (${label})${size} matches the reference over ${STEPS} steps`, async () => {
      await runCase(
        (params) => new Adagrad(params, options),
        adagradReference(options),
        ["sum"],
        shapes,
      );
    });
  }
}

Deno.test("RMSprop and Adagrad: PyTorch's defaults and messages for invalid options", () => {
  const p = tensor([1]);
  const rmsprop = new RMSprop([p]);
  assert.deepEqual(
    { ...rmsprop.paramGroups[0], params: null },
    {
      params: null,
      lr: 0.01,
      alpha: 0.99,
      eps: 1e-8,
      weightDecay: 0,
      momentum: 0,
      centered: false,
    },
  );
  const adagrad = new Adagrad([p]);
  assert.deepEqual(
    { ...adagrad.paramGroups[0], params: null },
    {
      params: null,
      lr: 0.01,
      lrDecay: 0,
      weightDecay: 0,
      initialAccumulatorValue: 0,
      eps: 1e-10,
    },
  );
  assert.throws(() => new RMSprop([p], { lr: -1 }), /Invalid learning rate: -1 \(RMSprop\)/);
  assert.throws(() => new RMSprop([p], { eps: -1 }), /Invalid epsilon value: -1/);
  assert.throws(() => new RMSprop([p], { momentum: -1 }), /Invalid momentum value: -1/);
  assert.throws(() => new RMSprop([p], { weightDecay: -1 }), /Invalid weight_decay value: -1/);
  assert.throws(() => new RMSprop([p], { alpha: -1 }), /Invalid alpha value: -1/);
  assert.throws(() => new Adagrad([p], { lr: -1 }), /Invalid learning rate: -1 \(Adagrad\)/);
  assert.throws(() => new Adagrad([p], { lrDecay: -1 }), /Invalid lr_decay value: -1/);
  assert.throws(() => new Adagrad([p], { weightDecay: -1 }), /Invalid weight_decay value: -1/);
  assert.throws(
    () => new Adagrad([p], { initialAccumulatorValue: -1 }),
    /Invalid initial_accumulator_value value: -1/,
  );
  assert.throws(() => new Adagrad([p], { eps: -1 }), /Invalid epsilon value: -1/);
  p.dispose();
});
