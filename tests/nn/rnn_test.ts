import { gruLayer, lstmLayer } from "../../nn/ops/rnn.ts";
import { GRU, LSTM, recurrentForward, type RecurrentWeights } from "../../nn/modules/rnn.ts";
import { cat } from "../../nn/ops/layout.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { zeros } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { assert, assertThrows } from "../assert.ts";
import { gpuReady } from "../testing.ts";
import { testOp } from "./op_helper.ts";
import {
  lstmLayerReference,
  recurrenceReference,
  type RefWeights,
  rnnReference,
  swap01,
} from "./reference/rnn.ts";

await gpuReady();

const T = 3, N = 2, IN = 3, H = 4;

for (const reverse of [false, true]) {
  Deno.test(`lstmLayer matches the reference and finite differences (reverse: ${reverse})`, async () => {
    await testOp({
      name: `lstmLayer reverse=${reverse}`,
      inputs: [[T, N, 4 * H], [4 * H, H], [4 * H], [N, H], [N, H]],
      gpu: ([x, w, b, h0, c0]) => lstmLayer(x, w, b, h0, c0, { reverse }),
      reference: ([x, w, b, h0, c0]) => lstmLayerReference(x, w, b, h0, c0, T, N, H, reverse),
      outputShape: [T + 1, N, H],
    });
  });

  Deno.test(`gruLayer matches the reference and finite differences (reverse: ${reverse})`, async () => {
    await testOp({
      name: `gruLayer reverse=${reverse}`,
      inputs: [[T, N, 3 * H], [3 * H, H], [3 * H], [N, H]],
      gpu: ([x, w, b, h0]) => gruLayer(x, w, b, h0, { reverse }),
      reference: ([x, w, b, h0]) =>
        recurrenceReference("gru", x, w, b, h0, null, T, N, H, reverse).out,
      outputShape: [T, N, H],
    });
  });
}

Deno.test("lstmLayer and gruLayer: one time step, batch 1, hidden 1, no bias", async () => {
  await testOp({
    name: "lstmLayer [1, 1, 4]",
    inputs: [[1, 1, 4], [4, 1], [1, 1], [1, 1]],
    gpu: ([x, w, h0, c0]) => lstmLayer(x, w, null, h0, c0),
    reference: ([x, w, h0, c0]) => lstmLayerReference(x, w, null, h0, c0, 1, 1, 1, false),
  });
  await testOp({
    name: "gruLayer [1, 1, 3]",
    inputs: [[1, 1, 3], [3, 1], [1, 1]],
    gpu: ([x, w, h0]) => gruLayer(x, w, null, h0),
    reference: ([x, w, h0]) => recurrenceReference("gru", x, w, null, h0, null, 1, 1, 1, false).out,
  });
});

interface Case {
  mode: "lstm" | "gru";
  layers: number;
  bidirectional: boolean;
  batchFirst: boolean;
  bias: boolean;
  initial: boolean;
}

const CASES: Case[] = [
  { mode: "lstm", layers: 1, bidirectional: false, batchFirst: false, bias: true, initial: true },
  { mode: "lstm", layers: 2, bidirectional: true, batchFirst: false, bias: true, initial: true },
  { mode: "lstm", layers: 2, bidirectional: false, batchFirst: true, bias: false, initial: false },
  { mode: "gru", layers: 1, bidirectional: false, batchFirst: false, bias: true, initial: true },
  { mode: "gru", layers: 2, bidirectional: true, batchFirst: true, bias: true, initial: true },
  { mode: "gru", layers: 1, bidirectional: true, batchFirst: false, bias: false, initial: false },
];

/** The shapes of one case's weights, in PyTorch's order. */
function weightShapes(c: Case): number[][] {
  const g = (c.mode === "lstm" ? 4 : 3) * H;
  const dirs = c.bidirectional ? 2 : 1;
  const shapes: number[][] = [];
  for (let layer = 0; layer < c.layers; layer++) {
    for (let d = 0; d < dirs; d++) {
      shapes.push([g, layer === 0 ? IN : dirs * H], [g, H]);
      if (c.bias) shapes.push([g], [g]);
    }
  }
  return shapes;
}

function groupWeights<W>(
  c: Case,
  flat: readonly W[],
): { weightIh: W; weightHh: W; biasIh: W | null; biasHh: W | null }[] {
  const per = c.bias ? 4 : 2;
  const groups = [];
  for (let k = 0; k < flat.length; k += per) {
    groups.push({
      weightIh: flat[k],
      weightHh: flat[k + 1],
      biasIh: c.bias ? flat[k + 2] : null,
      biasHh: c.bias ? flat[k + 3] : null,
    });
  }
  return groups;
}

for (const c of CASES) {
  const label = `${c.mode} layers=${c.layers} bidirectional=${c.bidirectional} ` +
    `batchFirst=${c.batchFirst} bias=${c.bias} h0=${c.initial}`;
  Deno.test(`recurrentForward (${label}) matches the reference and finite differences`, async () => {
    const dirs = c.bidirectional ? 2 : 1;
    const xShape = c.batchFirst ? [N, T, IN] : [T, N, IN];
    const states = c.initial
      ? (c.mode === "lstm" ? [[c.layers * dirs, N, H], [c.layers * dirs, N, H]] : [[
        c.layers * dirs,
        N,
        H,
      ]])
      : [];
    const shapes = weightShapes(c);
    await testOp({
      name: label,
      inputs: [xShape, ...shapes, ...states],
      gpu: ([x, ...rest]) => {
        const weights = groupWeights(c, rest.slice(0, shapes.length)) as RecurrentWeights[];
        const [h0, c0] = rest.slice(shapes.length);
        const { output, hN, cN } = recurrentForward(
          x,
          weights,
          {
            mode: c.mode,
            hiddenSize: H,
            numLayers: c.layers,
            bidirectional: c.bidirectional,
            batchFirst: c.batchFirst,
            dropout: 0,
            training: true,
          },
          h0,
          c0,
        );
        const parts = [output, hN, ...(cN ? [cN] : [])].map((t) => t.reshape([-1]));
        return cat(parts);
      },
      reference: ([x, ...rest]) => {
        const weights = groupWeights(c, rest.slice(0, shapes.length)).map((w) => ({
          wih: w.weightIh,
          whh: w.weightHh,
          bih: w.biasIh,
          bhh: w.biasHh,
        })) as RefWeights[];
        const [h0, c0] = rest.slice(shapes.length);
        const size = c.layers * dirs * N * H;
        const input = c.batchFirst ? swap01(x, N, T, IN) : x;
        const { output, hN, cN } = rnnReference(
          { ...c, t: T, n: N, inputSize: IN, hidden: H },
          input,
          weights,
          h0 ?? new Float64Array(size),
          c.mode === "lstm" ? (c0 ?? new Float64Array(size)) : null,
        );
        const out = c.batchFirst ? swap01(output, T, N, dirs * H) : output;
        return [...out, ...hN, ...(cN ?? [])];
      },
    });
  });
}

Deno.test("LSTM and GRU modules: PyTorch's parameter names and shapes, output shapes", () => {
  const lstm = new LSTM(3, 4, { numLayers: 2, bidirectional: true });
  const names = Object.entries(lstm.stateDict()).map(([k, t]) => `${k} ${t.shape.join("x")}`);
  assert.deepEqual(names, [
    "weight_ih_l0 16x3",
    "weight_hh_l0 16x4",
    "bias_ih_l0 16",
    "bias_hh_l0 16",
    "weight_ih_l0_reverse 16x3",
    "weight_hh_l0_reverse 16x4",
    "bias_ih_l0_reverse 16",
    "bias_hh_l0_reverse 16",
    "weight_ih_l1 16x8",
    "weight_hh_l1 16x4",
    "bias_ih_l1 16",
    "bias_hh_l1 16",
    "weight_ih_l1_reverse 16x8",
    "weight_hh_l1_reverse 16x4",
    "bias_ih_l1_reverse 16",
    "bias_hh_l1_reverse 16",
  ]);
  const gru = new GRU(3, 5, { bias: false, batchFirst: true });
  assert.deepEqual(Object.keys(gru.stateDict()), ["weight_ih_l0", "weight_hh_l0"]);
  tidy(() => {
    const [out, [hN, cN]] = lstm.forward(zeros([5, 2, 3]));
    assert.deepEqual([out.shape, hN.shape, cN.shape], [[5, 2, 8], [4, 2, 4], [4, 2, 4]]);
    const [g, gh] = gru.forward(zeros([2, 7, 3]));
    assert.deepEqual([g.shape, gh.shape], [[2, 7, 5], [1, 2, 5]]);
    const [u, uh] = gru.forward(zeros([7, 3]));
    assert.deepEqual([u.shape, uh.shape], [[7, 5], [1, 5]]);
  });
  for (const p of lstm.parameters()) {
    assert(p.shape.length > 0);
  }
  lstm.dispose();
  gru.dispose();
});

Deno.test("LSTM initial weights lie in [-1/sqrt(hidden), 1/sqrt(hidden)]", async () => {
  const lstm = new LSTM(3, 16);
  for (const p of lstm.parameters()) {
    const values = await p.toArray();
    assert(values.every((v) => Math.abs(v) <= 0.25), "bound 1/sqrt(16)");
    assert(values.some((v) => Math.abs(v) > 0.1), "spread");
  }
  lstm.dispose();
});

Deno.test("LSTM and GRU: bad input sizes and states are named", () => {
  const lstm = new LSTM(3, 4);
  assertThrows(() => lstm.forward(zeros([5, 2, 6])), /has 6 features; the layer takes 3/);
  assertThrows(() => lstm.forward(zeros([5])), /must be 3-D/);
  assertThrows(
    () => lstm.forward(zeros([5, 2, 3]), [zeros([1, 3, 4]), zeros([1, 2, 4])]),
    /h0 \[1, 3, 4\] must be \[1, 2, 4\]/,
  );
  assertThrows(() => new GRU(0, 4), /GRU: inputSize must be a positive integer, got 0/);
  assertThrows(
    () => lstmLayer(zeros([2, 1, 7]), zeros([8, 2]), null, zeros([1, 2]), zeros([1, 2])),
    /lstmLayer: xproj \[2, 1, 7\] must be \[T, N, 8\]/,
  );
  lstm.dispose();
});

Deno.test("LSTM training steps leak no GPU memory", () => {
  const lstm = new LSTM(3, 4, { numLayers: 2, bidirectional: true });
  const step = () => {
    const x = zeros([T, N, 3]);
    const [out, [hN, cN]] = lstm.forward(x);
    tidy(() => sum(cat([out.reshape([-1]), hN.reshape([-1]), cN.reshape([-1])])).backward());
    for (const t of [x, out, hN, cN]) t.dispose();
    for (const p of lstm.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  };
  step();
  const before = memoryStats().liveBuffers;
  step();
  step();
  assert.deepEqual(memoryStats().liveBuffers, before);
  lstm.dispose();
});
