/**
 * LSTM, GRU, MultiheadAttention and TransformerEncoderLayer against PyTorch 1.13
 * (`tests/pytorch/seq.py`): wgtorch's state dict loaded into torch's module (so the names must
 * match), the same inputs and output gradients → the same outputs, input gradients and parameter
 * gradients. PyTorch computes in float64, so the differences are wgtorch's float32 rounding:
 * outputs and gradients within 1e-5 relative (atol 1e-6; these small sizes need no looser
 * tolerance for accumulation).
 *
 * @module
 */

import { GRU, LSTM } from "../../nn/modules/rnn.ts";
import { MultiheadAttention } from "../../nn/modules/attention.ts";
import { TransformerEncoderLayer } from "../../nn/modules/transformer.ts";
import type { StateDict, StateDictInput } from "../../nn/modules/module.ts";
import { noGrad } from "../../nn/autograd.ts";
import { manualSeed } from "../../nn/modules/init.ts";
import { add, mul } from "../../nn/ops/elementwise.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import { askTorch, skipWithoutTorch } from "../torch.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";

await gpuReady();

interface InputSpec {
  shape: number[];
  data: number[];
  dtype?: "u8";
}

/** What the cases use of a module (their forward signatures differ). */
interface SeqModule {
  forward: AnyForward;
  stateDict(): StateDict;
  eval(): unknown;
  dispose(): void;
}

interface Case {
  name: string;
  kind: "lstm" | "gru" | "mha" | "encoder";
  config: Record<string, unknown>;
  make: () => SeqModule;
  inputs: Record<string, InputSpec>;
  run: (module: SeqModule, inputs: Record<string, Tensor>) => Tensor[];
}

const TOLERANCE = { atol: 1e-6, rtol: 1e-5 };

function f32(shape: number[], seed: number, scale = 1): InputSpec {
  const size = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Array.from(Float32Array.from(randomArray(size, seed, -scale, scale))) };
}

function u8(shape: number[], data: number[]): InputSpec {
  return { shape, data, dtype: "u8" };
}

// deno-lint-ignore no-explicit-any
type AnyForward = (...args: any[]) => any;

const rnnCase = (
  kind: "lstm" | "gru",
  layers: number,
  bidirectional: boolean,
  batchFirst: boolean,
  withState: boolean,
): Case => {
  const [t, n, inSize, h] = [3, 2, 3, 4];
  const dirs = bidirectional ? 2 : 1;
  const inputs: Record<string, InputSpec> = {
    x: f32(batchFirst ? [n, t, inSize] : [t, n, inSize], 1),
  };
  if (withState) {
    inputs.h0 = f32([layers * dirs, n, h], 2);
    if (kind === "lstm") inputs.c0 = f32([layers * dirs, n, h], 3);
  }
  const config = {
    inputSize: inSize,
    hiddenSize: h,
    numLayers: layers,
    bias: true,
    batchFirst,
    bidirectional,
  };
  return {
    name: `${kind} layers=${layers} bidirectional=${bidirectional} batchFirst=${batchFirst} ` +
      `h0=${withState}`,
    kind,
    config,
    make: () =>
      kind === "lstm"
        ? new LSTM(inSize, h, { numLayers: layers, batchFirst, bidirectional })
        : new GRU(inSize, h, { numLayers: layers, batchFirst, bidirectional }),
    inputs,
    run: (module, x) => {
      const forward = module.forward as AnyForward;
      if (kind === "lstm") {
        const [out, [hN, cN]] = forward(x.x, x.h0 ? [x.h0, x.c0] : undefined);
        return [out, hN, cN];
      }
      const [out, hN] = forward(x.x, x.h0);
      return [out, hN];
    },
  };
};

const mhaCase = (
  name: string,
  kdim: number,
  vdim: number,
  masks: Record<string, InputSpec>,
  average: boolean,
  batchFirst = false,
): Case => {
  const [l, s, n, e, heads] = [3, 5, 2, 8, 2];
  const seqShape = (len: number, d: number) => batchFirst ? [n, len, d] : [len, n, d];
  return {
    name: `MultiheadAttention ${name}`,
    kind: "mha",
    config: { embedDim: e, numHeads: heads, bias: true, batchFirst, kdim, vdim, average },
    make: () => new MultiheadAttention(e, heads, { kdim, vdim, batchFirst }),
    inputs: {
      query: f32(seqShape(l, e), 4),
      key: f32(seqShape(s, kdim), 5),
      value: f32(seqShape(s, vdim), 6),
      ...masks,
    },
    run: (module, x) => {
      const [out, weights] = (module.forward as AnyForward)(x.query, x.key, x.value, {
        keyPaddingMask: x.keyPaddingMask,
        attnMask: x.attnMask,
        averageAttnWeights: average,
      });
      return [out, weights];
    },
  };
};

const encoderCase = (
  activation: "relu" | "gelu",
  normFirst: boolean,
  batchFirst: boolean,
): Case => {
  const [l, n, e, heads, ff] = [4, 2, 8, 2, 12];
  return {
    name: `TransformerEncoderLayer ${activation} normFirst=${normFirst} batchFirst=${batchFirst}`,
    kind: "encoder",
    config: { dModel: e, nhead: heads, ff, activation, batchFirst, normFirst },
    make: () =>
      new TransformerEncoderLayer(e, heads, {
        dimFeedforward: ff,
        dropout: 0,
        activation,
        batchFirst,
        normFirst,
      }),
    inputs: {
      x: f32(batchFirst ? [n, l, e] : [l, n, e], 7),
      srcKeyPaddingMask: u8([n, l], [0, 0, 0, 1, 0, 1, 0, 0]),
    },
    run: (module, x) => [
      (module.forward as AnyForward)(x.x, { srcKeyPaddingMask: x.srcKeyPaddingMask }),
    ],
  };
};

const CASES: Case[] = [
  rnnCase("lstm", 1, false, false, false),
  rnnCase("lstm", 2, true, false, true),
  rnnCase("lstm", 2, false, true, true),
  rnnCase("gru", 1, false, false, true),
  rnnCase("gru", 2, true, true, true),
  rnnCase("gru", 1, true, false, false),
  mhaCase("self-attention shapes, no masks", 8, 8, {}, true),
  mhaCase("bool attnMask and keyPaddingMask", 8, 8, {
    attnMask: u8([3, 5], [0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0]),
    keyPaddingMask: u8([2, 5], [0, 0, 0, 1, 1, 0, 1, 0, 0, 0]),
  }, true),
  mhaCase("float attnMask, per-head weights, kdim 5, vdim 3", 5, 3, {
    attnMask: f32([3, 5], 8),
  }, false),
  mhaCase("batchFirst, float keyPaddingMask", 8, 8, { keyPaddingMask: f32([2, 5], 9) }, true, true),
  encoderCase("relu", false, false),
  encoderCase("gelu", true, true),
];

Deno.test("LSTM, GRU, MultiheadAttention, TransformerEncoderLayer match PyTorch 1.13 (outputs, input and parameter gradients)", async (t) => {
  if (skipWithoutTorch("seq_torch_test")) return;
  manualSeed(5);
  const prepared = [];
  for (const [k, c] of CASES.entries()) {
    const module = c.make();
    module.eval();
    const state: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
    for (const [name, p] of Object.entries(module.stateDict())) {
      state[name] = { shape: p.shape, data: await p.toArray() };
    }
    const inputs: Record<string, Tensor> = {};
    for (const [name, spec] of Object.entries(c.inputs)) {
      inputs[name] = spec.dtype === "u8"
        ? tensor(Uint8Array.from(spec.data), spec.shape, { dtype: "u8" })
        : tensor(Float32Array.from(spec.data), spec.shape, { requiresGrad: true });
    }
    const outputs = tidy(() => c.run(module, inputs));
    const grads = outputs.map((o, j) => Float32Array.from(randomArray(o.size, 100 + 10 * k + j)));
    tidy(() => {
      const terms = outputs.map((o, j) => sum(mul(o, tensor(grads[j], o.shape))));
      terms.reduce((a, b) => add(a, b)).backward();
    });
    const got = {
      outputs: await Promise.all(outputs.map((o) => o.toArray())),
      grads: {} as Record<string, Float32Array>,
    };
    for (const [name, x] of Object.entries(inputs)) {
      if (x.grad) got.grads[name] = await x.grad.toArray();
    }
    for (const [name, p] of Object.entries(module.stateDict())) {
      if (p.grad) got.grads[name] = await p.grad.toArray();
    }
    for (const o of outputs) o.dispose();
    for (const x of Object.values(inputs)) {
      x.grad?.dispose();
      x.dispose();
    }
    module.dispose();
    prepared.push({ c, state, grads, got });
  }
  const answer = await askTorch<{
    cases: { outputs: number[][]; grads: Record<string, number[]> }[];
  }>("seq.py", {
    cases: prepared.map(({ c, state, grads }) => ({
      kind: c.kind,
      config: c.config,
      state,
      inputs: c.inputs,
      grads,
    })),
  });
  for (const [k, { c, got }] of prepared.entries()) {
    await t.step(c.name, () => {
      const expected = answer.cases[k];
      for (const [j, out] of got.outputs.entries()) {
        assertClose(out, expected.outputs[j], TOLERANCE, `${c.name}: output ${j}`);
      }
      const names = Object.keys(expected.grads).sort();
      if (names.join() !== Object.keys(got.grads).sort().join()) {
        throw new Error(
          `${c.name}: gradients of [${Object.keys(got.grads).sort()}] but PyTorch has [${names}]`,
        );
      }
      for (const name of names) {
        assertClose(
          got.grads[name],
          expected.grads[name],
          TOLERANCE,
          `${c.name}: grad ${name}`,
        );
      }
    });
  }
});

Deno.test("weights PyTorch initialised load into wgtorch's LSTM, GRU, MultiheadAttention and TransformerEncoderLayer and give PyTorch's outputs", async () => {
  if (skipWithoutTorch("seq_torch_test")) return;
  const { states } = await askTorch<
    { states: Record<string, { shape: number[]; data: number[] }>[] }
  >("seq.py", { export: CASES.map((c, k) => ({ kind: c.kind, config: c.config, seed: k })) });
  const outputs: Float32Array[][] = [];
  for (const [k, c] of CASES.entries()) {
    const module = c.make();
    module.eval();
    // Strict: every name PyTorch saves must exist in wgtorch with the same shape, and vice versa.
    (module as unknown as { loadStateDict(state: StateDictInput): unknown }).loadStateDict(
      Object.fromEntries(
        Object.entries(states[k]).map(([name, v]) => [
          name,
          { shape: v.shape, data: Float32Array.from(v.data) },
        ]),
      ),
    );
    const inputs: Record<string, Tensor> = {};
    for (const [name, spec] of Object.entries(c.inputs)) {
      inputs[name] = spec.dtype === "u8"
        ? tensor(Uint8Array.from(spec.data), spec.shape, { dtype: "u8" })
        : tensor(Float32Array.from(spec.data), spec.shape);
    }
    const result = noGrad(() => c.run(module, inputs));
    outputs.push(await Promise.all(result.map((o) => o.toArray())));
    for (const t of [...result, ...Object.values(inputs)]) t.dispose();
    module.dispose();
  }
  const answer = await askTorch<{ cases: { outputs: number[][] }[] }>("seq.py", {
    cases: CASES.map((c, k) => ({
      kind: c.kind,
      config: c.config,
      state: states[k],
      inputs: c.inputs,
      grads: outputs[k].map((o) => Array.from({ length: o.length }, () => 0)),
    })),
  });
  for (const [k, c] of CASES.entries()) {
    for (const [j, out] of outputs[k].entries()) {
      assertClose(out, answer.cases[k].outputs[j], TOLERANCE, `${c.name}: output ${j}`);
    }
  }
});
