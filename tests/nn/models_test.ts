import assert from "node:assert/strict";
import { cnn, cnnBn, createModel, mlp, tuningCnn } from "../../nn/models.ts";
import { BatchNorm2d } from "../../nn/modules/batch_norm.ts";
import { Dropout, MaxPool2d, ReLU, Sequential } from "../../nn/modules/layers.ts";
import { Linear } from "../../nn/modules/linear.ts";
import { nllLoss } from "../../nn/ops/softmax.ts";
import { correctCount } from "../../nn/ops/reduce.ts";
import { Rng } from "../../nn/random.ts";
import { noGrad } from "../../nn/autograd.ts";
import { tidy } from "../../nn/scope.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { Adam } from "../../train/optim/adam.ts";
import { SGD } from "../../train/optim/sgd.ts";
import { assertThrows } from "../assert.ts";
import { blobImages } from "../synthetic.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";

await gpuReady();

Deno.test("the study's models have PyTorch's parameter counts and names", () => {
  const counts: [string, number, string[]][] = [
    ["mlp", 235_146, [
      "fc1.weight",
      "fc1.bias",
      "fc2.weight",
      "fc2.bias",
      "fc3.weight",
      "fc3.bias",
    ]],
    ["cnn", 8_490, [
      "conv1.weight",
      "conv1.bias",
      "conv2.weight",
      "conv2.bias",
      "fc.weight",
      "fc.bias",
    ]],
    ["cnn-bn", 8_550, [
      "conv1.weight",
      "conv1.bias",
      "bn1.weight",
      "bn1.bias",
      "bn1.running_mean",
      "bn1.running_var",
      "conv2.weight",
      "conv2.bias",
      "bn2.weight",
      "bn2.bias",
      "bn2.running_mean",
      "bn2.running_var",
      "fc.weight",
      "fc.bias",
    ]],
  ];
  for (const [name, count, keys] of counts) {
    const model = createModel(name as "mlp");
    assert.equal(model.parameterCount(), count, name);
    assert.deepEqual(Object.keys(model.stateDict()), keys, name);
    model.dispose();
  }
  const tuning = tuningCnn({ l1: 64 });
  assert.equal(tuning.parameterCount(), 26_534);
  assert.deepEqual(Object.keys(tuning.stateDict()).slice(-4), [
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
  ]);
  tuning.dispose();
});

Deno.test("each model maps a batch to [N, 10] log-probabilities whose exp sums to 1", async () => {
  for (const model of [mlp(), cnn(), cnnBn(), tuningCnn({ l1: 128 })]) {
    for (const training of [true, false]) {
      model.train(training);
      const x = tensor(Float32Array.from(randomArray(5 * 784, 1, 0, 1)), [5, 1, 28, 28]);
      const out = noGrad(() => model.forward(x));
      assert.deepEqual(out.shape, [5, 10]);
      const values = await out.toArray();
      for (let row = 0; row < 5; row++) {
        const total = values.slice(row * 10, row * 10 + 10).reduce(
          (sum, v) => sum + Math.exp(v),
          0,
        );
        assert.ok(Math.abs(total - 1) < 1e-4, `${model.config.model}: row ${row} sums to ${total}`);
      }
      x.dispose();
      out.dispose();
    }
    model.dispose();
  }
});

Deno.test("initialisation is PyTorch's default and reproducible from a seed", async () => {
  const a = new Linear(50, 20, { rng: new Rng(7) });
  const b = new Linear(50, 20, { rng: new Rng(7) });
  const weights = await a.weight.toArray();
  assert.deepEqual(weights, await b.weight.toArray());
  const bound = 1 / Math.sqrt(50);
  assert.ok(weights.every((w) => Math.abs(w) <= bound), "weights within ±1/√fan_in");
  assert.ok(
    Math.max(...weights) > 0.8 * bound && Math.min(...weights) < -0.8 * bound,
    "spread over the range",
  );
  const bias = await a.bias!.toArray();
  assert.ok(bias.every((v) => Math.abs(v) <= bound));
  const bn = new BatchNorm2d(3);
  assert.deepEqual([...await bn.weight!.toArray()], [1, 1, 1]);
  assert.deepEqual([...await bn.bias!.toArray()], [0, 0, 0]);
  assert.deepEqual([...await bn.runningVar.toArray()], [1, 1, 1]);
  for (const m of [a, b, bn]) m.dispose();
});

Deno.test("Dropout is the identity in eval; BatchNorm in eval uses the running statistics", async () => {
  const drop = new Dropout(0.5).eval();
  const x = tensor([1, 2, 3, 4], [1, 4]);
  assert.deepEqual([...await drop.forward(x).toArray()], [1, 2, 3, 4]);
  const bn = new BatchNorm2d(2).eval();
  bn.loadStateDict({
    weight: { shape: [2], data: new Float32Array([2, 1]) },
    bias: { shape: [2], data: new Float32Array([0.5, 0]) },
    running_mean: { shape: [2], data: new Float32Array([1, -1]) },
    running_var: { shape: [2], data: new Float32Array([4, 0.25]) },
  });
  const input = tensor([3, 5, 0, 1], [1, 2, 1, 2]);
  const expected = [
    2 * (3 - 1) / Math.sqrt(4 + 1e-5) + 0.5,
    2 * (5 - 1) / Math.sqrt(4 + 1e-5) + 0.5,
    1 / Math.sqrt(0.25 + 1e-5),
    2 / Math.sqrt(0.25 + 1e-5),
  ];
  assertClose(await bn.forward(input).toArray(), expected, { atol: 1e-5, rtol: 1e-5 });
  bn.dispose();
});

Deno.test("loadStateDict names every missing, unexpected and mis-shaped tensor, and changes nothing", async () => {
  const model = cnn();
  const state = model.stateDict();
  const before = await model.conv1.weight.toArray();
  const bad = {
    ...Object.fromEntries(Object.entries(state).filter(([name]) => name !== "fc.bias")),
    "fc2.weight": { shape: [2], data: new Float32Array(2) },
    "conv1.weight": { shape: [10, 1, 3, 3], data: new Float32Array(90) },
  };
  assertThrows(
    () => model.loadStateDict(bad),
    /missing: fc\.bias.*unexpected: fc2\.weight.*conv1\.weight/s,
  );
  assert.deepEqual(await model.conv1.weight.toArray(), before);
  model.dispose();
});

Deno.test("Sequential names children by position, like PyTorch", () => {
  const net = new Sequential(new Linear(3, 4), new Dropout(0.1), new Linear(4, 2));
  assert.deepEqual(net.namedParameters().map(([name]) => name), [
    "0.weight",
    "0.bias",
    "2.weight",
    "2.bias",
  ]);
  net.dispose();
});

// Learning happens: each model, a few hundred steps on the synthetic blobs, beats chance clearly.
for (
  const [name, make, optimizer] of [
    ["mlp", () => mlp({ rng: new Rng(1) }), "adam"],
    ["cnn", () => cnn({ rng: new Rng(1) }), "adam"],
    ["cnn-bn", () => cnnBn({ rng: new Rng(1) }), "sgd"],
    ["tuning-cnn", () => tuningCnn({ l1: 64, rng: new Rng(1) }), "adam"],
  ] as const
) {
  Deno.test(`${name} learns the synthetic blobs (${optimizer})`, async () => {
    const model = make();
    const train = blobImages(2048, 11), test = blobImages(512, 12);
    const opt = optimizer === "adam"
      ? new Adam(model.parameters(), { lr: 0.003 })
      : new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const batch = 64;
    const x = tensor(train.images, [2048, 1, 28, 28]);
    const y = tensor(train.labels, [2048], { dtype: "i32" });
    for (let step = 0; step < 150; step++) {
      const start = (step * batch) % 2048;
      tidy(() => {
        opt.zeroGrad();
        const xb = tensor(train.images.subarray(start * 784, (start + batch) * 784), [
          batch,
          1,
          28,
          28,
        ]);
        const yb = tensor(train.labels.subarray(start, start + batch), [batch], { dtype: "i32" });
        nllLoss(model.forward(xb), yb).backward();
        opt.step();
      });
    }
    model.eval();
    const correct = tidy(() => {
      const xt = tensor(test.images, [512, 1, 28, 28]);
      const yt = tensor(test.labels, [512], { dtype: "i32" });
      return noGrad(() => correctCount(model.forward(xt), yt));
    });
    const accuracy = (await correct.item()) / 512;
    assert.ok(
      accuracy > 0.6,
      `${name}: test accuracy ${accuracy} is not clearly above chance (0.1)`,
    );
    for (const t of [x, y, correct]) t.dispose();
    opt.zeroGrad();
    model.dispose();
  });
}

Deno.test("the models' conv blocks equal Conv2d → BatchNorm2d → ReLU → MaxPool2d in PyTorch's order", async () => {
  const model = cnnBn({ rng: new Rng(3) });
  const reference = new Sequential(model.conv1, model.bn1, new ReLU(), new MaxPool2d(2));
  const input = Float32Array.from(randomArray(2 * 784, 5, 0, 1));
  const run = async (forward: (x: Tensor) => Tensor) => {
    const x = tensor(input, [2, 1, 28, 28], { requiresGrad: true });
    const out = forward(x);
    out.backward({ grad: tensor(Float32Array.from(randomArray(out.size, 6)), out.shape) });
    const result = { out: await out.toArray(), grad: await x.grad!.toArray() };
    x.grad!.dispose();
    return result;
  };
  // Training mode normalises with the batch's statistics (the running ones move with every
  // call but do not enter the output); eval mode with the running ones.
  for (const training of [true, false]) {
    model.train(training);
    const viaModel = await run((x) =>
      (model as unknown as { features(x: Tensor): Tensor }).features(x)
    );
    assert.equal(viaModel.out.length, 2 * 320);
    const viaLayers = await run((x) => {
      const block2 = new Sequential(model.conv2, model.bn2, new ReLU(), new MaxPool2d(2));
      return block2.forward(reference.forward(x)).flatten(1);
    });
    assertClose(
      viaModel.out,
      viaLayers.out,
      { atol: 1e-5, rtol: 1e-4 },
      `output, training ${training}`,
    );
    assertClose(
      viaModel.grad,
      viaLayers.grad,
      { atol: 1e-5, rtol: 1e-4 },
      `gradient, training ${training}`,
    );
  }
  model.dispose();
});
