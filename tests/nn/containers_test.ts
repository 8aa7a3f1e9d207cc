// ModuleList and ModuleDict (children registered with PyTorch's names), modules with several
// inputs and outputs (kept by the call scope, freed after backward), and strict / non-strict
// loadStateDict.
import assert from "node:assert/strict";
import { BatchNorm2d } from "../../nn/modules/batch_norm.ts";
import { ModuleDict, ModuleList } from "../../nn/modules/containers.ts";
import { Conv2d } from "../../nn/modules/conv2d.ts";
import { Dropout, ReLU, Sequential } from "../../nn/modules/layers.ts";
import { Linear } from "../../nn/modules/linear.ts";
import { type AnyModule, Module } from "../../nn/modules/module.ts";
import { add, mul, relu } from "../../nn/ops/elementwise.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { noGrad } from "../../nn/autograd.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { sync } from "../../nn/gpu/stream.ts";
import { Rng } from "../../nn/random.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import { assertThrows } from "../assert.ts";
import { gpuReady, randomArray } from "../testing.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";

await gpuReady();

/** A module structure, built both here and by tests/pytorch/modules.py. */
type Spec =
  | ["linear", number, number]
  | ["conv2d", number, number, number]
  | ["batchnorm2d", number]
  | ["relu"]
  | ["sequential", Spec[]]
  | ["list", Spec[]]
  | ["dict", [string, Spec][]]
  | ["module", [string, Spec][]];

/** A module with no forward of its own, holding children as fields. */
class Holder extends Module<[], never> {
  forward(): never {
    throw new Error("Holder has no forward");
  }
}

function build(spec: Spec): AnyModule {
  switch (spec[0]) {
    case "linear":
      return new Linear(spec[1], spec[2]);
    case "conv2d":
      return new Conv2d(spec[1], spec[2], spec[3]);
    case "batchnorm2d":
      return new BatchNorm2d(spec[1]);
    case "relu":
      return new ReLU();
    case "sequential":
      return new Sequential(...spec[1].map(build) as Module[]);
    case "list":
      return new ModuleList(spec[1].map(build));
    case "dict":
      return new ModuleDict(spec[1].map(([key, s]): [string, AnyModule] => [key, build(s)]));
    case "module": {
      const holder = new Holder();
      for (const [name, s] of spec[1]) Object.assign(holder, { [name]: build(s) });
      return holder;
    }
  }
}

const STRUCTURE: Spec = ["module", [
  ["stem", ["conv2d", 1, 3, 3]],
  ["blocks", ["list", [
    ["linear", 3, 4],
    ["relu"],
    ["batchnorm2d", 2],
    ["list", [["linear", 2, 2]]],
    ["sequential", [["relu"], ["linear", 4, 1]]],
  ]]],
  ["heads", ["dict", [
    ["cls", ["linear", 2, 5]],
    ["box", ["dict", [["xy", ["linear", 2, 2]], ["wh", ["linear", 3, 2]]]]],
    ["extra", ["list", []]],
  ]]],
]];

Deno.test("ModuleList: array-like, children named by position", () => {
  const list = new ModuleList([new Linear(3, 4), new ReLU()]);
  assert.equal(list.length, 2);
  list.push(new Linear(4, 2)).push(new Dropout(0.1));
  list.insert(0, new Linear(2, 3));
  list.extend([new Linear(2, 2)]);
  assert.equal(list.length, 6);
  assert.ok(list.at(0) instanceof Linear && (list.at(0) as Linear).inFeatures === 2);
  assert.ok(list.at(-1) instanceof Linear && (list.at(-1) as Linear).outFeatures === 2);
  assert.equal(list.at(6), undefined);
  assert.deepEqual([...list].map((m) => m.constructor.name), [
    "Linear",
    "Linear",
    "ReLU",
    "Linear",
    "Dropout",
    "Linear",
  ]);
  assert.deepEqual(list.namedParameters().map(([name]) => name), [
    "0.weight",
    "0.bias",
    "1.weight",
    "1.bias",
    "3.weight",
    "3.bias",
    "5.weight",
    "5.bias",
  ]);
  assert.equal(list.parameters().length, 8);
  assertThrows(() => list.insert(8, new ReLU()), /ModuleList.insert: index 8 is out of range/);
  // @ts-expect-error: not a module, on purpose
  assertThrows(() => list.push(3), /ModuleList.push: needs a Module, got 3/);
  assertThrows(() => list.forward(), /ModuleList has no forward/);
  list.dispose();
});

Deno.test("ModuleDict: string keys in insertion order, children named by key", () => {
  const cls = new Linear(8, 10);
  const heads = new ModuleDict({ cls, box: new Linear(8, 4) });
  assert.deepEqual(heads.keys(), ["cls", "box"]);
  heads.set("aux", new Linear(8, 1));
  const replaced = new Linear(8, 3);
  heads.set("cls", replaced); // an existing key keeps its place
  assert.equal(heads.get("cls"), replaced);
  assert.equal(heads.get("nope"), undefined);
  assert.ok(heads.has("box") && !heads.has("nope"));
  assert.equal(heads.size, 3);
  assert.deepEqual(heads.entries().map(([key]) => key), ["cls", "box", "aux"]);
  assert.deepEqual([...heads].map(([key]) => key), ["cls", "box", "aux"]);
  assert.deepEqual(Object.keys(heads.stateDict()), [
    "cls.weight",
    "cls.bias",
    "box.weight",
    "box.bias",
    "aux.weight",
    "aux.bias",
  ]);
  const aux = heads.pop("aux")!;
  assert.deepEqual(heads.keys(), ["cls", "box"]);
  assertThrows(() => heads.set("a.b", aux), /ModuleDict.set: key "a.b" must be a non-empty/);
  assertThrows(() => heads.set("", aux), /ModuleDict.set: key "" must be/);
  // @ts-expect-error: not a module, on purpose
  assertThrows(() => heads.set("x", {}), /ModuleDict.set\("x"\): needs a Module, got Object/);
  assertThrows(() => heads.forward(), /ModuleDict has no forward/);
  heads.dispose();
  cls.dispose();
  aux.dispose();
});

Deno.test("containers' modules are seen by parameters(), train()/eval(), stateDict() and loadStateDict()", async () => {
  const model = build(STRUCTURE);
  const keys = Object.keys(model.stateDict());
  assert.deepEqual(keys.slice(0, 4), [
    "stem.weight",
    "stem.bias",
    "blocks.0.weight",
    "blocks.0.bias",
  ]);
  assert.ok(keys.includes("blocks.2.running_var") && keys.includes("heads.box.wh.bias"));
  assert.equal(model.parameters().length, model.namedParameters().length);
  assert.equal(model.parameters().length, keys.length - 2); // the batch norm's two buffers
  model.eval();
  const all = (m: AnyModule): AnyModule[] => [m, ...m.namedChildren().flatMap(([, c]) => all(c))];
  assert.ok(all(model).every((m) => !m.training), "eval() reaches every descendant");
  model.train();
  assert.ok(all(model).every((m) => m.training), "train() reaches every descendant");
  assert.equal(all(model).length, 17);

  // Loading one model's state into another of the same structure copies every tensor.
  const other = build(STRUCTURE);
  assert.deepEqual(other.loadStateDict(model.stateDict()), { missingKeys: [], unexpectedKeys: [] });
  const theirs = other.stateDict();
  for (const [name, t] of Object.entries(model.stateDict())) {
    assert.deepEqual(await theirs[name].toArray(), await t.toArray(), name);
  }
  model.dispose();
  other.dispose();
});

Deno.test("ModuleList and ModuleDict models have PyTorch's state dict names and shapes", async () => {
  if (skipWithoutTorch("container names vs PyTorch")) return;
  const torch = await askTorch<{ keys: string[]; shapes: number[][] }>("modules.py", {
    structure: STRUCTURE,
  });
  const model = build(STRUCTURE);
  const state = model.stateDict();
  // wgtorch keeps no num_batches_tracked (and ignores it when loading PyTorch's state).
  const expected = torch.keys
    .map((key, i): [string, number[]] => [key, torch.shapes[i]])
    .filter(([key]) => !key.endsWith("num_batches_tracked"));
  assert.deepEqual(
    Object.entries(state).map(([key, t]) => [key, [...t.shape]]),
    expected,
  );
  model.dispose();
});

/** Two inputs, three outputs (a record holding a pair), sharing intermediates. */
class TwoHeads extends Module<[Tensor, Tensor], { joint: Tensor; pair: [Tensor, Tensor] }> {
  readonly left = new Linear(4, 3, { rng: new Rng(1) });
  readonly right = new Linear(5, 3, { rng: new Rng(2) });
  readonly heads = new ModuleList([
    new Linear(3, 2, { rng: new Rng(3) }),
    new Linear(3, 1, { rng: new Rng(4) }),
  ]);
  forward(a: Tensor, b: Tensor): { joint: Tensor; pair: [Tensor, Tensor] } {
    const h = relu(add(this.left.forward(a), this.right.forward(b)));
    const joint = mul(h, h);
    return { joint, pair: [this.heads.at(0)!.forward(h), this.heads.at(1)!.forward(joint)] };
  }
}

/** live buffers and bytes once the GPU caught up. */
async function footprint(): Promise<[number, number]> {
  await sync();
  const stats = memoryStats();
  return [stats.liveBuffers, stats.liveBytes];
}

function clearGrads(model: AnyModule): void {
  for (const p of model.parameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
}

Deno.test("a module with two inputs and three outputs: every output survives, backward reaches every parameter, nothing leaks", async () => {
  const model = new TwoHeads();
  const a = tensor(Float32Array.from(randomArray(8, 5)), [2, 4]);
  const b = tensor(Float32Array.from(randomArray(10, 6)), [2, 5]);
  const before = await footprint();

  // The outputs are alive and right after the call.
  const { joint, pair: [first, second] } = model.forward(a, b);
  assert.deepEqual([joint.shape, first.shape, second.shape], [[2, 3], [2, 2], [2, 1]]);
  const expectedJoint = noGrad(() =>
    tidy(() => {
      const h = relu(add(model.left.forward(a), model.right.forward(b)));
      return mul(h, h);
    })
  );
  assert.deepEqual(await joint.toArray(), await expectedJoint.toArray());
  expectedJoint.dispose();
  assert.equal((await first.toArray()).length, 4);

  // Backward through all three: every parameter gets a gradient.
  tidy(() => add(add(sum(joint), sum(first)), sum(second)).backward());
  for (const [name, p] of model.namedParameters()) assert.ok(p.grad, `${name} has a gradient`);
  for (const t of [joint, first, second]) t.dispose();
  clearGrads(model);
  assert.deepEqual(await footprint(), before, "after backward through all outputs");

  // Backward through one output only, then disposing the others frees the rest of the graph.
  const outputs = model.forward(a, b);
  const one = sum(outputs.pair[0]);
  one.backward();
  assert.equal(model.heads.at(1)!.parameters()[0].grad, null, "the unused head has no gradient");
  assert.ok(model.left.weight.grad, "the shared trunk has a gradient");
  for (const t of [one, outputs.joint, ...outputs.pair]) t.dispose();
  clearGrads(model);
  assert.deepEqual(await footprint(), before, "after backward through one output");

  // Without backward, and in noGrad, disposing the outputs frees everything.
  for (const grad of [true, false]) {
    const out = grad ? model.forward(a, b) : noGrad(() => model.forward(a, b));
    for (const t of [out.joint, ...out.pair]) t.dispose();
    assert.deepEqual(await footprint(), before, `no backward (grad ${grad})`);
  }
  model.dispose();
  a.dispose();
  b.dispose();
});

/** Returns a tuple; one output is an input of the other's graph. */
class Chain extends Module<[Tensor], [Tensor, Tensor]> {
  readonly fc = new Linear(3, 3, { rng: new Rng(7) });
  forward(x: Tensor): [Tensor, Tensor] {
    const hidden = this.fc.forward(x);
    return [hidden, relu(hidden)];
  }
}

Deno.test("a tuple output whose parts depend on each other; nested in a module of one output", async () => {
  class Outer extends Module {
    readonly chain = new Chain();
    forward(x: Tensor): Tensor {
      const [hidden, activated] = this.chain.forward(x);
      return add(hidden, activated);
    }
  }
  const model = new Outer();
  const x = tensor(Float32Array.from(randomArray(6, 8)), [2, 3]);
  const before = await footprint();
  const out = model.forward(x);
  const total = sum(out);
  total.backward();
  assert.ok(model.chain.fc.weight.grad && model.chain.fc.bias!.grad);
  total.dispose();
  out.dispose();
  clearGrads(model);
  assert.deepEqual(await footprint(), before);
  model.dispose();
  x.dispose();
});

Deno.test("loadStateDict strict (default): one error naming missing and unexpected keys; changes nothing", async () => {
  const model = build(["module", [["fc", ["linear", 3, 2]], ["heads", ["dict", [["a", [
    "linear",
    2,
    2,
  ]]]]]]]);
  const state = model.stateDict();
  const before = await state["fc.weight"].toArray();
  const given = {
    "fc.weight": { shape: [2, 3], data: new Float32Array(6).fill(1) },
    "heads.b.weight": { shape: [2, 2], data: new Float32Array(4) },
  };
  assertThrows(
    () => model.loadStateDict(given),
    /^loadStateDict: missing: fc\.bias, heads\.a\.weight, heads\.a\.bias; unexpected: heads\.b\.weight$/,
  );
  assert.deepEqual(await model.stateDict()["fc.weight"].toArray(), before);
  model.dispose();
});

Deno.test("loadStateDict non-strict: loads what matches, returns missing and unexpected keys; shape mismatches still throw", async () => {
  const model = build(["module", [["fc", ["linear", 3, 2]], ["heads", ["list", [[
    "linear",
    2,
    2,
  ]]]]]]);
  const biasBefore = await model.stateDict()["fc.bias"].toArray();
  const result = model.loadStateDict({
    "fc.weight": { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    "heads.1.weight": { shape: [2, 2], data: new Float32Array(4) },
    "bn.num_batches_tracked": { shape: [], data: new Float32Array(1) },
  }, { strict: false });
  assert.deepEqual(result, {
    missingKeys: ["fc.bias", "heads.0.weight", "heads.0.bias"],
    unexpectedKeys: ["heads.1.weight"],
  });
  const state = model.stateDict();
  assert.deepEqual([...await state["fc.weight"].toArray()], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(await state["fc.bias"].toArray(), biasBefore);

  // A shape mismatch throws even when not strict (as PyTorch), and loads nothing.
  assertThrows(
    () =>
      model.loadStateDict({
        "fc.weight": { shape: [2, 3], data: new Float32Array(6) },
        "fc.bias": { shape: [3], data: new Float32Array(3) },
        "other": { shape: [1], data: new Float32Array(1) },
      }, { strict: false }),
    /^loadStateDict: wrong shape: fc\.bias is \[3\] in the file, the model needs \[2\]$/,
  );
  // So does a data array of the wrong length.
  assertThrows(
    () =>
      model.loadStateDict({
        "fc.weight": { shape: [2, 3], data: new Float32Array(6) },
        "fc.bias": { shape: [2], data: new Float32Array(5) },
      }, { strict: false }),
    /loadStateDict: fc\.bias has 5 values for shape \[2\] \(2 values\)/,
  );
  assert.deepEqual([...await state["fc.weight"].toArray()], [1, 2, 3, 4, 5, 6]);
  model.dispose();
});

Deno.test("a module in two slots: its parameters once in parameters(), under both names in stateDict(), as PyTorch", () => {
  const shared = new Linear(2, 2);
  const list = new ModuleList([shared, shared, new ReLU()]);
  // PyTorch: nn.ModuleList([l, l, nn.ReLU()]) has named_parameters 0.weight, 0.bias and
  // state_dict keys 0.weight, 0.bias, 1.weight, 1.bias.
  assert.deepEqual(list.namedParameters().map(([name]) => name), ["0.weight", "0.bias"]);
  assert.deepEqual(list.parameters(), [shared.weight, shared.bias]);
  assert.equal(list.parameterCount(), 6);
  assert.deepEqual(Object.keys(list.stateDict()), ["0.weight", "0.bias", "1.weight", "1.bias"]);
  assert.deepEqual(list.loadStateDict(list.stateDict()), { missingKeys: [], unexpectedKeys: [] });
  list.dispose();
  assert.ok(shared.weight.isDisposed && shared.bias!.isDisposed);
});

Deno.test("a forward returning a Map keeps its tensors", async () => {
  class Named extends Module<[Tensor], Map<string, Tensor>> {
    readonly fc = new Linear(3, 2, { rng: new Rng(9) });
    forward(x: Tensor): Map<string, Tensor> {
      const y = this.fc.forward(x);
      return new Map([["y", y], ["activated", relu(y)]]);
    }
  }
  const model = new Named();
  const x = tensor(Float32Array.from(randomArray(6, 10)), [2, 3]);
  const before = await footprint();
  const out = model.forward(x);
  const y = await out.get("y")!.toArray();
  assert.deepEqual([...await out.get("activated")!.toArray()], [...y].map((v) => Math.max(v, 0)));
  for (const t of out.values()) t.dispose();
  assert.deepEqual(await footprint(), before);
  model.dispose();
  x.dispose();
});
