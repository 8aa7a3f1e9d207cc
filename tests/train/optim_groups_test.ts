/**
 * Parameter groups of every optimizer: defaults and per-group options, hyperparameters changed
 * between steps, validation at step time, state dicts (with groups, and the old flat format),
 * against the float64 references and against PyTorch 1.13 itself (tests/pytorch/optim.py).
 */
import assert from "node:assert/strict";
import {
  adagradStepReference,
  adamStepReference,
  rmspropStepReference,
  sgdStepReference,
} from "./reference/optimizers.ts";
import { compiledKernelCount } from "../../nn/gpu/program.ts";
import { streamStats } from "../../nn/gpu/stream.ts";
import { encodeSafetensors } from "../../nn/safetensors.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { Linear } from "../../nn/modules/linear.ts";
import { Adam, AdamW } from "../../train/optim/adam.ts";
import { Adagrad } from "../../train/optim/adagrad.ts";
import type { LegacyOptimizerStateDict, Optimizer } from "../../train/optim/optimizer.ts";
import { RMSprop } from "../../train/optim/rmsprop.ts";
import { SGD } from "../../train/optim/sgd.ts";
import { CHECKPOINT_KEY, loadCheckpoint, restoreCheckpoint } from "../../train/checkpoint.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";

await gpuReady();
const noTorch = skipWithoutTorch("optim_groups_test (the PyTorch comparisons)");

const SHAPES = [[7], [3, 5], [1], [2, 301]];
/** Group 0 holds parameters 0 and 2, group 1 parameters 1 and 3. */
const GROUPS = [[0, 2], [1, 3]];
const STEPS = 5;

type Options = Record<string, number | boolean | number[]>;
type Kind = "SGD" | "Adam" | "AdamW" | "RMSprop" | "Adagrad";

interface Case {
  label: string;
  optimizer: Kind;
  defaults: Options;
  /** Per-group options (group 0, group 1). */
  groups: [Options, Options];
  /** Changes of group options before a step: step → [group, options]. */
  updates?: Record<number, [number, Options][]>;
  /** Where wgtorch deliberately differs from PyTorch (compared with the reference only). */
  notPytorch?: boolean;
}

const CASES: Case[] = [
  {
    label: "SGD: Nesterov and dampened momentum, lr and momentum changed between steps",
    optimizer: "SGD",
    defaults: { lr: 0.1, momentum: 0.9 },
    groups: [{ nesterov: true, weightDecay: 0.001 }, {
      lr: 0.05,
      weightDecay: 0.01,
      dampening: 0.1,
    }],
    updates: { 2: [[0, { lr: 0.02 }]], 3: [[1, { momentum: 0.5 }]] },
  },
  {
    label: "SGD: plain, then momentum turned on in one group",
    optimizer: "SGD",
    defaults: { lr: 0.1 },
    groups: [{}, { lr: 0.2, weightDecay: 0.1 }],
    updates: { 2: [[1, { momentum: 0.9 }]] },
  },
  {
    label: "Adam: betas, lr, weight decay and AMSGrad per group, new betas assigned",
    optimizer: "Adam",
    defaults: { lr: 0.01 },
    groups: [{}, { lr: 0.003, betas: [0.8, 0.99], weightDecay: 0.1, amsgrad: true }],
    updates: { 2: [[0, { betas: [0.85, 0.995] }]], 3: [[0, { lr: 0.005 }]] },
  },
  {
    label: "AdamW: decoupled weight decay per group",
    optimizer: "AdamW",
    defaults: { lr: 0.01, weightDecay: 0.05 },
    groups: [{ weightDecay: 0, amsgrad: true }, { lr: 0.02, eps: 1e-6 }],
    updates: { 3: [[1, { betas: [0.5, 0.9] }]] },
  },
  {
    label: "RMSprop: centered with momentum, and plain with weight decay",
    optimizer: "RMSprop",
    defaults: { lr: 0.01 },
    groups: [{ momentum: 0.9, centered: true }, { lr: 0.001, weightDecay: 0.1, alpha: 0.9 }],
    updates: { 3: [[0, { momentum: 0.8 }]] },
  },
  {
    label: "Adagrad: lr decay and weight decay per group",
    optimizer: "Adagrad",
    defaults: { lr: 0.1, initialAccumulatorValue: 0.1 },
    groups: [{ lrDecay: 0.1 }, { lr: 0.05, weightDecay: 0.05, eps: 1e-6 }],
  },
  {
    label: "Adagrad: initial accumulator per group",
    optimizer: "Adagrad",
    defaults: { lr: 0.1 },
    groups: [{}, { initialAccumulatorValue: 0.5 }],
    // PyTorch 1.13 fills every `sum` with the constructor's initial_accumulator_value and
    // ignores the groups' (its own group option): wgtorch uses the group's.
    notPytorch: true,
  },
];

function make(kind: Kind, params: unknown, defaults: Options): Optimizer {
  // deno-lint-ignore no-explicit-any
  const p = params as any, o = defaults as any;
  switch (kind) {
    case "SGD":
      return new SGD(p, o);
    case "Adam":
      return new Adam(p, o);
    case "AdamW":
      return new AdamW(p, o);
    case "RMSprop":
      return new RMSprop(p, o);
    case "Adagrad":
      return new Adagrad(p, o);
  }
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function f32(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(values));
}

const initial = SHAPES.map((shape, i) => f32(randomArray(size(shape), 300 + i)));

/** The gradient of parameter `i` at `step`, or null (parameter 2 has none before step 2). */
function gradFor(i: number, step: number): Float64Array | null {
  if (i === 2 && step < 2) return null;
  return f32(randomArray(size(SHAPES[i]), 4000 + 31 * step + i, -2, 2));
}

/** Full hyperparameters of each group, PyTorch's defaults filled in. */
function resolved(kind: Kind, defaults: Options, group: Options): Options {
  const base: Record<Kind, Options> = {
    SGD: { lr: 1e-3, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 },
    Adam: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false },
    AdamW: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false },
    RMSprop: {
      lr: 0.01,
      alpha: 0.99,
      eps: 1e-8,
      weightDecay: 0,
      momentum: 0,
      centered: false,
    },
    Adagrad: { lr: 0.01, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10 },
  };
  return { ...base[kind], ...defaults, ...group };
}

interface RefState {
  param: Float64Array;
  buffers: Record<string, Float64Array | null>;
  step: number;
}

/** One float64 reference step of parameter state `s` with the group's options `o`. */
function referenceStep(kind: Kind, o: Options, s: RefState, grad: Float64Array): RefState {
  const b = s.buffers;
  const n = (name: string) => o[name] as number;
  switch (kind) {
    case "SGD": {
      const out = sgdStepReference({ param: s.param, grad, momentumBuffer: b.momentum_buffer }, {
        lr: n("lr"),
        momentum: n("momentum"),
        dampening: n("dampening"),
        nesterov: o.nesterov as boolean,
        weightDecay: n("weightDecay"),
      });
      const buffers = { ...b };
      if (out.momentumBuffer) buffers.momentum_buffer = out.momentumBuffer;
      return { param: out.param, buffers, step: s.step + 1 };
    }
    case "Adam":
    case "AdamW": {
      const [beta1, beta2] = o.betas as number[];
      const out = adamStepReference({
        param: s.param,
        grad,
        expAvg: b.exp_avg,
        expAvgSq: b.exp_avg_sq,
        maxExpAvgSq: b.max_exp_avg_sq,
        step: s.step,
      }, {
        lr: n("lr"),
        beta1,
        beta2,
        eps: n("eps"),
        weightDecay: n("weightDecay"),
        decoupledWeightDecay: kind === "AdamW",
        amsgrad: o.amsgrad as boolean,
      });
      const buffers: Record<string, Float64Array | null> = {
        ...b,
        exp_avg: out.expAvg,
        exp_avg_sq: out.expAvgSq,
      };
      if (out.maxExpAvgSq) buffers.max_exp_avg_sq = out.maxExpAvgSq;
      return { param: out.param, buffers, step: out.step };
    }
    case "RMSprop": {
      const out = rmspropStepReference({
        param: s.param,
        grad,
        squareAvg: b.square_avg,
        momentumBuffer: b.momentum_buffer,
        gradAvg: b.grad_avg,
      }, {
        lr: n("lr"),
        alpha: n("alpha"),
        eps: n("eps"),
        weightDecay: n("weightDecay"),
        momentum: n("momentum"),
        centered: o.centered as boolean,
      });
      const buffers: Record<string, Float64Array | null> = { ...b, square_avg: out.squareAvg };
      if (out.momentumBuffer) buffers.momentum_buffer = out.momentumBuffer;
      if (out.gradAvg) buffers.grad_avg = out.gradAvg;
      return { param: out.param, buffers, step: s.step + 1 };
    }
    case "Adagrad": {
      const out = adagradStepReference({ param: s.param, grad, sum: b.sum, step: s.step }, {
        lr: n("lr"),
        lrDecay: n("lrDecay"),
        weightDecay: n("weightDecay"),
        initialAccumulatorValue: n("initialAccumulatorValue"),
        eps: n("eps"),
      });
      return { param: out.param, buffers: { sum: out.sum }, step: out.step };
    }
  }
}

/** Runs a case on the GPU: the parameters after each step, and the optimizer's last state. */
async function runGpu(c: Case): Promise<Float64Array[][]> {
  const params = initial.map((data, i) =>
    tensor(Float32Array.from(data), SHAPES[i], { requiresGrad: true })
  );
  const optimizer = make(
    c.optimizer,
    GROUPS.map((indices, g) => ({ params: indices.map((i) => params[i]), ...c.groups[g] })),
    c.defaults,
  );
  assert.deepEqual(optimizer.params, [params[0], params[2], params[1], params[3]]);
  const history: Float64Array[][] = [];
  for (let step = 0; step < STEPS; step++) {
    for (const [g, options] of c.updates?.[step] ?? []) {
      Object.assign(optimizer.paramGroups[g], structuredClone(options));
    }
    for (const [i, param] of params.entries()) {
      param.grad?.dispose();
      const grad = gradFor(i, step);
      param.grad = grad && tensor(Float32Array.from(grad), SHAPES[i]);
    }
    const before = streamStats();
    optimizer.step();
    const after = streamStats();
    assert.equal(after.readbacks, before.readbacks, "step() reads nothing back");
    // Parameters with the same kernel, settings and step scalars share a dispatch.
    const updated = step < 2 ? 3 : 4;
    const dispatches = after.dispatches - before.dispatches;
    assert.ok(
      dispatches >= 1 && dispatches <= updated,
      `at most one dispatch a param: ${dispatches} for ${updated}`,
    );
    history.push(await Promise.all(params.map(async (p) => f32(await p.toArray()))));
  }
  optimizer.zeroGrad();
  optimizer.dispose();
  for (const param of params) param.dispose();
  return history;
}

/** The float64 reference of a case: the parameters after each step. */
function runReference(c: Case): Float64Array[][] {
  const options = c.groups.map((group) => resolved(c.optimizer, c.defaults, group));
  let states: RefState[] = initial.map((param) => ({ param, buffers: {}, step: 0 }));
  const history: Float64Array[][] = [];
  for (let step = 0; step < STEPS; step++) {
    for (const [g, change] of c.updates?.[step] ?? []) Object.assign(options[g], change);
    states = states.map((state, i) => {
      const grad = gradFor(i, step);
      const g = GROUPS.findIndex((members) => members.includes(i));
      return grad ? referenceStep(c.optimizer, options[g], state, grad) : state;
    });
    history.push(states.map((s) => s.param));
  }
  return history;
}

for (const c of CASES) {
  Deno.test(`${c.label}: matches the float64 reference step by step`, async () => {
    const gpu = await runGpu(c);
    const expected = runReference(c);
    for (let step = 0; step < STEPS; step++) {
      for (let i = 0; i < SHAPES.length; i++) {
        assertClose(
          gpu[step][i],
          expected[step][i],
          { atol: 2e-6, rtol: 1e-5 },
          `step ${step} p${i}`,
        );
      }
    }
  });

  if (c.notPytorch) continue;
  Deno.test({
    name: `${c.label}: matches PyTorch 1.13 step by step`,
    ignore: noTorch,
    fn: async () => {
      const gpu = await runGpu(c);
      const answer = await askTorch<{ params: number[][][] }>("optim.py", {
        kind: "optimizer",
        optimizer: c.optimizer,
        defaults: c.defaults,
        groups: GROUPS.map((indices, g) => ({ params: indices, ...c.groups[g] })),
        params: initial.map((data, i) => ({ shape: SHAPES[i], data: Array.from(data) })),
        grads: Array.from(
          { length: STEPS },
          (_, step) => SHAPES.map((_, i) => gradFor(i, step)),
        ),
        updates: Array.from(
          { length: STEPS },
          (_, step) => (c.updates?.[step] ?? []).map(([group, options]) => ({ group, ...options })),
        ),
      });
      for (let step = 0; step < STEPS; step++) {
        for (let i = 0; i < SHAPES.length; i++) {
          assertClose(
            gpu[step][i],
            answer.params[step][i],
            { atol: 1e-6, rtol: 1e-5 },
            `step ${step} p${i}`,
          );
        }
      }
    },
  });
}

Deno.test("paramGroups: defaults filled in, plain objects, lr getter and setter, errors", () => {
  const a = tensor([1, 2], [2], { requiresGrad: true });
  const b = tensor([3], [1], { requiresGrad: true });
  const sgd = new SGD([{ params: [a], lr: 0.5 }, { params: b, weightDecay: 0.1 }], {
    lr: 0.1,
    momentum: 0.9,
  });
  assert.deepEqual(sgd.paramGroups.map((g) => ({ ...g })), [
    { params: [a], lr: 0.5, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 },
    { params: [b], lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0.1 },
  ]);
  assert.equal(sgd.lr, 0.5, "lr is group 0's");
  sgd.lr = 0.25;
  assert.deepEqual(sgd.paramGroups.map((g) => g.lr), [0.25, 0.25], "the setter sets every group");
  assert.throws(() => (sgd.lr = -1), /Invalid learning rate: -1/);
  assert.deepEqual(sgd.paramGroups.map((g) => g.lr), [0.25, 0.25]);

  const adam = new Adam([{ params: [a] }, { params: [b], betas: [0.5, 0.6] }], {
    betas: [0.8, 0.9],
  });
  assert.deepEqual(adam.paramGroups.map((g) => g.betas), [[0.8, 0.9], [0.5, 0.6]]);
  adam.paramGroups[0].betas[0] = 0.7;
  assert.deepEqual(adam.paramGroups[1].betas, [0.5, 0.6], "groups never share a betas array");
  assert.deepEqual(adam.betas, [0.7, 0.9]);

  assert.throws(
    () => new SGD([{ params: [a] }, { params: [b, a] }]),
    { message: "some parameters appear in more than one parameter group" },
  );
  assert.throws(() => new SGD([{ params: [a, a] }]), /parameter 1 appears more than once/);
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => new SGD([{ params: [a], learningRate: 0.1 } as any]),
    /SGD: parameter group 0 has an unknown option "learningRate" \(SGD takes lr, momentum/,
  );
  assert.throws(
    () => new Adam([{ params: [a] }, { params: [b], betas: [1, 0.5] }]),
    { message: "Invalid beta parameter at index 0: 1 (Adam, parameter group 1)" },
  );
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => new SGD([{ params: [a] }, b] as any),
    /SGD: parameter group 1 must be an object \{ params, \.\.\.options \}, got a Tensor/,
  );
  // deno-lint-ignore no-explicit-any
  assert.throws(() => new SGD([{ lr: 1 }] as any), /SGD: parameter group 0 has no params/);
  assert.throws(() => new SGD([]), /optimizer got an empty parameter list/);
  for (const t of [a, b]) t.dispose();
});

Deno.test("hyperparameters changed between steps: validated at step time, nothing compiled", async () => {
  const a = tensor([1, 2, 3], [3], { requiresGrad: true });
  const b = tensor([4, 5], [2], { requiresGrad: true });
  const optimizers = [
    new SGD([{ params: [a] }, { params: [b], lr: 0.2 }], { lr: 0.1, momentum: 0.9 }),
    new Adam([{ params: [a] }, { params: [b], lr: 0.2 }]),
    new RMSprop([{ params: [a], momentum: 0.5 }, { params: [b] }]),
    new Adagrad([{ params: [a] }, { params: [b], lrDecay: 0.5 }]),
  ];
  for (const optimizer of optimizers) {
    for (let k = 0; k < 2; k++) {
      a.grad?.dispose();
      b.grad?.dispose();
      a.grad = tensor([1, -1, 0.5], [3]);
      b.grad = tensor([0.25, 2], [2]);
      optimizer.step();
    }
    const kernels = compiledKernelCount();
    const groups = optimizer.paramGroups as unknown as Record<string, unknown>[];
    groups[0].lr = 0.0123;
    if ("momentum" in groups[0]) groups[0].momentum = 0.77;
    if ("betas" in groups[1]) groups[1].betas = [0.81, 0.91];
    if ("lrDecay" in groups[1]) groups[1].lrDecay = 0.25;
    optimizer.step();
    assert.equal(compiledKernelCount(), kernels, `${optimizer.name}: new values compile nothing`);

    const before = await a.toArray();
    groups[1].weightDecay = -1;
    assert.throws(
      () => optimizer.step(),
      {
        message: `${optimizer.name}.step(): Invalid weight_decay value: -1 (${optimizer.name}, ` +
          "parameter group 1)",
      },
    );
    groups[1].weightDecay = 0;
    groups[0].lr = Number.NaN;
    assert.throws(() => optimizer.step(), /Invalid learning rate: NaN/);
    assert.deepEqual(await a.toArray(), before, "an invalid group stops the whole step");
    assert.equal(optimizer.stepCount, 3);
    groups[0].lr = 0.01;
    // deno-lint-ignore no-explicit-any
    (groups[0] as any).params = [b];
    assert.throws(() => optimizer.step(), /parameter group 0's params were replaced/);
    optimizer.zeroGrad();
    optimizer.dispose();
  }
  assert.throws(
    () => {
      const sgd = new SGD([a], { momentum: 0.9, nesterov: true });
      sgd.paramGroups[0].dampening = 0.5;
      a.grad = tensor([1, 1, 1], [3]);
      try {
        sgd.step();
      } finally {
        sgd.zeroGrad();
      }
    },
    { message: "SGD.step(): Nesterov momentum requires a momentum and zero dampening (SGD)" },
  );
  for (const t of [a, b]) t.dispose();
});

/** Steps an optimizer of `kind` over fresh copies of `data` with the same gradients. */
function stepAll(optimizer: Optimizer, params: Tensor[], steps: number[]): void {
  for (const step of steps) {
    for (const [i, p] of params.entries()) {
      p.grad?.dispose();
      const grad = gradFor(i, step);
      p.grad = grad && tensor(Float32Array.from(grad), SHAPES[i]);
    }
    optimizer.step();
  }
}

function paramsOf(): Tensor[] {
  return initial.map((data, i) =>
    tensor(Float32Array.from(data), SHAPES[i], { requiresGrad: true })
  );
}

function grouped(params: Tensor[]) {
  return GROUPS.map((indices) => ({ params: indices.map((i) => params[i]) }));
}

Deno.test("state dicts with groups: saved, restored into the group objects, resumed identically", async () => {
  for (const c of CASES) {
    const a = paramsOf();
    const first = make(
      c.optimizer,
      GROUPS.map((indices, g) => ({ params: indices.map((i) => a[i]), ...c.groups[g] })),
      c.defaults,
    );
    stepAll(first, a, [0, 1, 2]);
    Object.assign(first.paramGroups[1], { lr: 0.0042 });
    const dict = first.stateDict();
    assert.deepEqual(dict.paramGroups.map((g) => g.params), [[0, 1], [2, 3]]);
    assert.equal(dict.paramGroups[1].lr, 0.0042);
    // Through JSON and copies of the tensors, as a checkpoint would.
    const json = JSON.parse(JSON.stringify({ ...dict, state: undefined }));
    const state: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(dict.state)) {
      state[name] = tensor(await t.toArray(), t.shape);
    }
    const b = await Promise.all(
      a.map(async (p, i) => tensor(await p.toArray(), SHAPES[i], { requiresGrad: true })),
    );
    const second = make(c.optimizer, grouped(b), { lr: 123 });
    const group1 = second.paramGroups[1];
    second.loadStateDict({ ...json, state });
    for (const t of Object.values(state)) t.dispose();
    assert.equal(second.paramGroups[1], group1, "the same group objects");
    assert.deepEqual(
      second.paramGroups.map((g) => ({ ...g, params: null })),
      first.paramGroups.map((g) => ({ ...g, params: null })),
      c.label,
    );
    stepAll(first, a, [3, 4]);
    stepAll(second, b, [3, 4]);
    for (const [i, p] of a.entries()) {
      assert.deepEqual(await b[i].toArray(), await p.toArray(), `${c.label}: param ${i}`);
    }
    for (const o of [first, second]) {
      o.zeroGrad();
      o.dispose();
    }
    for (const p of [...a, ...b]) p.dispose();
  }
});

Deno.test("loadStateDict: group count and sizes must match; bad hyperparameters change nothing", () => {
  const [p, q, r] = [tensor([1]), tensor([2, 3]), tensor([4])];
  const two = new SGD([{ params: [p] }, { params: [q, r] }], { momentum: 0.9 });
  const dict = two.stateDict();
  const one = new SGD([p, q, r]);
  assert.throws(
    () => one.loadStateDict(dict),
    /loaded state dict has a different number of parameter groups \(2, this optimizer has 1\)/,
  );
  const other = new SGD([{ params: [p, q] }, { params: [r] }]);
  assert.throws(
    () => other.loadStateDict(dict),
    /contains a parameter group that doesn't match the size of optimizer's group \(group 0: 1/,
  );
  const same = new SGD([{ params: [p] }, { params: [q, r] }], { lr: 0.5 });
  assert.throws(
    () =>
      same.loadStateDict({
        ...dict,
        paramGroups: [dict.paramGroups[0], { ...dict.paramGroups[1], momentum: -2 }],
      }),
    { message: "SGD.loadStateDict: Invalid momentum value: -2 (SGD, parameter group 1)" },
  );
  assert.throws(
    () =>
      same.loadStateDict({
        ...dict,
        paramGroups: [dict.paramGroups[0], { ...dict.paramGroups[1], foo: 1 }],
      }),
    /parameter group 1 has unknown hyperparameters: foo/,
  );
  const { nesterov: _, ...incomplete } = dict.paramGroups[0];
  assert.throws(
    () => same.loadStateDict({ ...dict, paramGroups: [incomplete as never, dict.paramGroups[1]] }),
    /parameter group 0 has no nesterov/,
  );
  assert.deepEqual(same.paramGroups.map((g) => [g.lr, g.momentum]), [[0.5, 0], [0.5, 0]]);
  const legacy: LegacyOptimizerStateDict = {
    optimizer: "SGD",
    step: 0,
    paramSteps: [0, 0, 0],
    state: {},
    hyperparameters: { lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 },
  };
  assert.throws(
    () => same.loadStateDict(legacy),
    /has one parameter group \(saved before parameter groups\), this optimizer has 2/,
  );
  for (const o of [two, one, other, same]) o.dispose();
  for (const t of [p, q, r]) t.dispose();
});

Deno.test("old single-group state dicts (and checkpoints) still load", async () => {
  // SGD and Adam as saved before parameter groups: flat hyperparameters, Adam's betas apart.
  const a = paramsOf().slice(0, 2);
  const adam = new Adam(a, { lr: 0.01 });
  stepAll(adam, a, [0, 1]);
  const dict = adam.stateDict();
  const legacy: LegacyOptimizerStateDict = {
    optimizer: "Adam",
    step: dict.step,
    paramSteps: dict.paramSteps,
    state: dict.state,
    hyperparameters: { lr: 0.02, beta1: 0.8, beta2: 0.99, eps: 1e-7, weightDecay: 0.5 },
  };
  const b = await Promise.all(
    a.map(async (p, i) => tensor(await p.toArray(), SHAPES[i], { requiresGrad: true })),
  );
  const resumed = new Adam(b);
  resumed.loadStateDict(legacy);
  assert.deepEqual({ ...resumed.paramGroups[0], params: null }, {
    params: null,
    lr: 0.02,
    betas: [0.8, 0.99],
    eps: 1e-7,
    weightDecay: 0.5,
    amsgrad: false,
  });
  assert.deepEqual(resumed.stateDict().paramSteps, [2, 2]);

  // A checkpoint file in the old format, through loadCheckpoint and restoreCheckpoint.
  const model = Object.assign(new Linear(3, 2), { config: { model: "linear" } });
  const weight = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const momentum = Float32Array.from([0.5, -0.5, 0.25, 1, 2, 3]);
  const info = {
    epoch: 1,
    model: { model: "linear" },
    optimizer: {
      optimizer: "SGD",
      step: 4,
      paramSteps: [4, 0],
      hyperparameters: { lr: 0.05, momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 0 },
    },
    scheduler: null,
    extra: null,
  };
  const bytes = encodeSafetensors({
    "model.weight": { shape: [2, 3], data: weight },
    "model.bias": { shape: [2], data: Float32Array.from([7, 8]) },
    "optimizer.0.momentum_buffer": { shape: [2, 3], data: momentum },
  }, { [CHECKPOINT_KEY]: JSON.stringify(info) });
  const dir = await Deno.makeTempDir({ prefix: "wgtorch_optim_groups_" });
  try {
    await Deno.writeFile(`${dir}/old.safetensors`, bytes);
    const sgd = new SGD(model.parameters(), { lr: 1 });
    restoreCheckpoint(await loadCheckpoint(`${dir}/old.safetensors`), { model, optimizer: sgd });
    assert.deepEqual({ ...sgd.paramGroups[0], params: null }, {
      params: null,
      lr: 0.05,
      momentum: 0.9,
      dampening: 0,
      nesterov: true,
      weightDecay: 0,
    });
    const saved = sgd.stateDict();
    assert.equal(saved.step, 4);
    assert.deepEqual(await saved.state["0.momentum_buffer"].toArray(), momentum);
    sgd.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  for (const o of [adam, resumed]) {
    o.zeroGrad();
    o.dispose();
  }
  for (const p of [...a, ...b, ...model.parameters()]) p.dispose();
});

/** The shape the LR schedulers drive (train/lr_scheduler.ts's `LrTarget`, with groups). */
interface LrTarget {
  lr: number;
  paramGroups?: readonly { lr: number; momentum?: number; betas?: [number, number] }[];
}

Deno.test("every optimizer is an LrTarget with groups; writes through it reach the next step", async () => {
  const a = tensor([1, 2, 3], [3], { requiresGrad: true });
  const targets: LrTarget[] = [
    new SGD([a], { momentum: 0.9 }),
    new Adam([a]),
    new AdamW([a]),
    new RMSprop([a], { momentum: 0.5 }),
    new Adagrad([a]),
  ];
  for (const target of targets) {
    const optimizer = target as unknown as Optimizer;
    const group = target.paramGroups![0];
    group.lr = 0.25;
    if (group.momentum !== undefined) group.momentum = 0.75;
    if (group.betas !== undefined) group.betas[0] = 0.6;
    assert.equal(target.lr, 0.25);
    const saved = optimizer.stateDict().paramGroups[0];
    assert.equal(saved.lr, 0.25);
    if (group.momentum !== undefined) assert.equal(saved.momentum, 0.75);
    if (group.betas !== undefined) assert.deepEqual(saved.betas, [0.6, 0.999]);
    optimizer.dispose();
  }
  // The first SGD step with momentum 0.75 and lr 0.25: p - 0.25·g (the buffer starts as g); the
  // second: buf = 0.75·g + g.
  const sgd = new SGD([a], { momentum: 0.9 });
  const target: LrTarget = sgd;
  for (let k = 0; k < 2; k++) {
    target.paramGroups![0].lr = 0.25;
    target.paramGroups![0].momentum = 0.75;
    a.grad?.dispose();
    a.grad = tensor([1, 1, 1], [3]);
    sgd.step();
  }
  assertClose(await a.toArray(), [1 - 0.25 - 0.4375, 2 - 0.6875, 3 - 0.6875], {
    atol: 1e-6,
    rtol: 0,
  });
  sgd.zeroGrad();
  sgd.dispose();
  a.dispose();
});
