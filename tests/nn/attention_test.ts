import { scaledDotProductAttention } from "../../nn/ops/attention.ts";
import { MultiheadAttention, multiHeadAttention } from "../../nn/modules/attention.ts";
import { TransformerEncoderLayer } from "../../nn/modules/transformer.ts";
import { cat } from "../../nn/ops/layout.ts";
import { randUniform, tensor, zeros } from "../../nn/tensor.ts";
import { add } from "../../nn/ops/elementwise.ts";
import { sum } from "../../nn/ops/reduce.ts";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { tidy } from "../../nn/scope.ts";
import { manualSeed } from "../../nn/modules/init.ts";
import { assert, assertThrows } from "../assert.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";
import { testOp } from "./op_helper.ts";
import { encoderLayerReference, mhaReference, sdpaReference } from "./reference/attention.ts";

await gpuReady();

Deno.test("scaledDotProductAttention matches softmax(q kᵀ / √E) v and finite differences", async () => {
  // Batch [2, 1], L 3, S 5, E 6, Ev 3: nothing a multiple of 4 but the batch.
  await testOp({
    name: "sdpa [2, 1, 3, 6] [2, 1, 5, 6] [2, 1, 5, 3]",
    inputs: [[2, 1, 3, 6], [2, 1, 5, 6], [2, 1, 5, 3]],
    gpu: ([q, k, v]) => scaledDotProductAttention(q, k, v),
    reference: ([q, k, v]) => sdpaReference(q, k, v, 2, 3, 5, 6, 3).out,
    outputShape: [2, 1, 3, 3],
  });
  // 2-D, one query row.
  await testOp({
    name: "sdpa [1, 4] [7, 4] [7, 1]",
    inputs: [[1, 4], [7, 4], [7, 1]],
    gpu: ([q, k, v]) => scaledDotProductAttention(q, k, v),
    reference: ([q, k, v]) => sdpaReference(q, k, v, 1, 1, 7, 4, 1).out,
  });
});

Deno.test("scaledDotProductAttention: float mask (differentiated), bool mask, isCausal", async () => {
  await testOp({
    name: "sdpa float mask",
    inputs: [[2, 3, 4], [2, 5, 4], [2, 5, 2], [3, 5]],
    gpu: ([q, k, v, m]) => scaledDotProductAttention(q, k, v, { attnMask: m }),
    reference: ([q, k, v, m]) =>
      sdpaReference(q, k, v, 2, 3, 5, 4, 2, (_b, i, j) => m[i * 5 + j]).out,
  });
  const keep = [1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1];
  await testOp({
    name: "sdpa bool mask (1 = attend)",
    inputs: [[2, 3, 4], [2, 5, 4], [2, 5, 2]],
    gpu: ([q, k, v]) =>
      scaledDotProductAttention(q, k, v, {
        attnMask: tensor(Uint8Array.from(keep), [3, 5], { dtype: "u8" }),
      }),
    reference: ([q, k, v]) =>
      sdpaReference(q, k, v, 2, 3, 5, 4, 2, (_b, i, j) => keep[i * 5 + j] ? 0 : -Infinity).out,
  });
  await testOp({
    name: "sdpa isCausal",
    inputs: [[3, 4, 5], [3, 4, 5], [3, 4, 3]],
    gpu: ([q, k, v]) => scaledDotProductAttention(q, k, v, { isCausal: true }),
    reference: ([q, k, v]) =>
      sdpaReference(q, k, v, 3, 4, 4, 5, 3, (_b, i, j) => j > i ? -Infinity : 0).out,
  });
});

Deno.test("scaledDotProductAttention: mismatched shapes are named", () => {
  assertThrows(
    () => scaledDotProductAttention(zeros([2, 3, 4]), zeros([2, 5, 3]), zeros([2, 5, 2])),
    /query \[2, 3, 4\], key \[2, 5, 3\] and value \[2, 5, 2\] do not fit/,
  );
  assertThrows(
    () => scaledDotProductAttention(zeros([4]), zeros([4]), zeros([4])),
    /at least 2 dimensions/,
  );
});

const L = 3, S = 5, N = 2, E = 4, HEADS = 2;

interface MhaCase {
  name: string;
  kdim: number;
  vdim: number;
  bias: boolean;
  attnMask?: "float2d" | "bool2d" | "float3d";
  keyPadding?: "bool" | "float";
  average: boolean;
}

const MHA_CASES: MhaCase[] = [
  { name: "packed, no masks", kdim: E, vdim: E, bias: true, average: true },
  {
    name: "packed, bool attnMask + bool keyPaddingMask",
    kdim: E,
    vdim: E,
    bias: true,
    attnMask: "bool2d",
    keyPadding: "bool",
    average: true,
  },
  {
    name: "packed, float 3-D attnMask, float keyPaddingMask, per-head weights",
    kdim: E,
    vdim: E,
    bias: true,
    attnMask: "float3d",
    keyPadding: "float",
    average: false,
  },
  {
    name: "separate kdim 3 / vdim 5, no bias, float 2-D mask",
    kdim: 3,
    vdim: 5,
    bias: false,
    attnMask: "float2d",
    average: true,
  },
];

// 1 = not attended (MultiheadAttention's convention); no row fully masked.
const BOOL_ATTN = [0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0];
const BOOL_PAD = [0, 0, 0, 1, 1, 0, 0, 0, 0, 1];

for (const c of MHA_CASES) {
  Deno.test(`multiHeadAttention (${c.name}) matches the reference and finite differences`, async () => {
    const wShapes = c.kdim === E && c.vdim === E
      ? [[3 * E, E]]
      : [[E, E], [E, c.kdim], [E, c.vdim]];
    const shapes: number[][] = [[L, N, E], [S, N, c.kdim], [S, N, c.vdim], ...wShapes];
    if (c.bias) shapes.push([3 * E]);
    shapes.push([E, E]);
    if (c.bias) shapes.push([E]);
    const maskShape = c.attnMask === "float3d" ? [N * HEADS, L, S] : [L, S];
    const floatAttn = c.attnMask === "float2d" || c.attnMask === "float3d";
    if (floatAttn) shapes.push(maskShape);
    if (c.keyPadding === "float") shapes.push([N, S]);
    await testOp({
      name: `multiHeadAttention ${c.name}`,
      inputs: shapes,
      gpu: (inputs) => {
        const [q, k, v, ...rest] = inputs;
        const packed = wShapes.length === 1;
        const ws = rest.splice(0, wShapes.length);
        const inBias = c.bias ? rest.shift()! : null;
        const wo = rest.shift()!;
        const bo = c.bias ? rest.shift()! : null;
        const attnMask = floatAttn
          ? rest.shift()!
          : c.attnMask === "bool2d"
          ? tensor(Uint8Array.from(BOOL_ATTN), [L, S], { dtype: "u8" })
          : undefined;
        const keyPaddingMask = c.keyPadding === "float"
          ? rest.shift()!
          : c.keyPadding === "bool"
          ? tensor(Uint8Array.from(BOOL_PAD), [N, S], { dtype: "u8" })
          : undefined;
        const [out, weights] = multiHeadAttention(q, k, v, {
          numHeads: HEADS,
          inProjWeight: packed ? ws[0] : null,
          qProjWeight: packed ? null : ws[0],
          kProjWeight: packed ? null : ws[1],
          vProjWeight: packed ? null : ws[2],
          inProjBias: inBias,
          outProjWeight: wo,
          outProjBias: bo,
          attnMask,
          keyPaddingMask,
          averageAttnWeights: c.average,
        });
        return cat([out.reshape([-1]), weights!.reshape([-1])]);
      },
      reference: (inputs) => {
        const [q, k, v, ...rest] = inputs;
        const packed = wShapes.length === 1;
        const ws = rest.splice(0, wShapes.length);
        const inBias = c.bias ? rest.shift()! : null;
        const wo = rest.shift()!;
        const bo = c.bias ? rest.shift()! : null;
        const attnMask = floatAttn
          ? rest.shift()!
          : c.attnMask === "bool2d"
          ? Float64Array.from(BOOL_ATTN, (b) => b ? -Infinity : 0)
          : undefined;
        const keyPadding = c.keyPadding === "float"
          ? rest.shift()!
          : c.keyPadding === "bool"
          ? Float64Array.from(BOOL_PAD, (b) => b ? -Infinity : 0)
          : undefined;
        const r = mhaReference(q, k, v, {
          wq: packed ? ws[0].subarray(0, E * E) : ws[0],
          wk: packed ? ws[0].subarray(E * E, 2 * E * E) : ws[1],
          wv: packed ? ws[0].subarray(2 * E * E) : ws[2],
          inBias,
          wo,
          bo,
        }, {
          l: L,
          s: S,
          n: N,
          e: E,
          kdim: c.kdim,
          vdim: c.vdim,
          heads: HEADS,
          attnMask,
          keyPadding,
        });
        return [...r.out, ...(c.average ? r.weights : r.headWeights)];
      },
    });
  });
}

Deno.test("multiHeadAttention: self-attention (one tensor as query, key and value)", async () => {
  await testOp({
    name: "multiHeadAttention self-attention",
    inputs: [[L, N, E], [3 * E, E], [3 * E], [E, E], [E]],
    gpu: ([x, w, b, wo, bo]) => {
      const [out, weights] = multiHeadAttention(x, x, x, {
        numHeads: HEADS,
        inProjWeight: w,
        inProjBias: b,
        outProjWeight: wo,
        outProjBias: bo,
        attnMask: tensor(Uint8Array.from([0, 1, 1, 0, 0, 1, 0, 0, 0]), [L, L], { dtype: "u8" }),
      });
      return cat([out.reshape([-1]), weights!.reshape([-1])]);
    },
    reference: ([x, w, b, wo, bo]) => {
      const r = mhaReference(x, x, x, {
        wq: w.subarray(0, E * E),
        wk: w.subarray(E * E, 2 * E * E),
        wv: w.subarray(2 * E * E),
        inBias: b,
        wo,
        bo,
      }, {
        l: L,
        s: L,
        n: N,
        e: E,
        kdim: E,
        vdim: E,
        heads: HEADS,
        attnMask: Float64Array.from([0, 1, 1, 0, 0, 1, 0, 0, 0], (m) => m ? -Infinity : 0),
      });
      return [...r.out, ...r.weights];
    },
  });
});

Deno.test("multiHeadAttention: unbatched 2-D inputs", async () => {
  await testOp({
    name: "multiHeadAttention unbatched",
    inputs: [[L, E], [S, E], [S, E], [3 * E, E], [3 * E], [E, E], [E]],
    gpu: ([q, k, v, w, b, wo, bo]) => {
      const [out, weights] = multiHeadAttention(q, k, v, {
        numHeads: HEADS,
        inProjWeight: w,
        inProjBias: b,
        outProjWeight: wo,
        outProjBias: bo,
      });
      assert.deepEqual([out.shape, weights!.shape], [[L, E], [L, S]]);
      return cat([out.reshape([-1]), weights!.reshape([-1])]);
    },
    reference: ([q, k, v, w, b, wo, bo]) => {
      const r = mhaReference(q, k, v, {
        wq: w.subarray(0, E * E),
        wk: w.subarray(E * E, 2 * E * E),
        wv: w.subarray(2 * E * E),
        inBias: b,
        wo,
        bo,
      }, { l: L, s: S, n: 1, e: E, kdim: E, vdim: E, heads: HEADS });
      return [...r.out, ...r.weights];
    },
  });
});

Deno.test("MultiheadAttention: PyTorch's names, zero biases, batchFirst, bad inputs named", async () => {
  manualSeed(3);
  const mha = new MultiheadAttention(8, 2, { batchFirst: true });
  assert.deepEqual(
    Object.entries(mha.stateDict()).map(([k, t]) => `${k} ${t.shape.join("x")}`),
    ["in_proj_weight 24x8", "in_proj_bias 24", "out_proj.weight 8x8", "out_proj.bias 8"],
  );
  assert((await mha.inProjBias!.toArray()).every((v) => v === 0));
  assert((await mha.outProj.bias!.toArray()).every((v) => v === 0));
  const bound = Math.sqrt(6 / 32);
  const w = await mha.inProjWeight!.toArray();
  assert(w.every((v) => Math.abs(v) <= bound) && w.some((v) => Math.abs(v) > bound / 2));
  const separate = new MultiheadAttention(8, 4, { kdim: 3, vdim: 5, bias: false });
  assert.deepEqual(Object.keys(separate.stateDict()), [
    "q_proj_weight",
    "k_proj_weight",
    "v_proj_weight",
    "out_proj.weight",
  ]);
  tidy(() => {
    const x = zeros([2, 7, 8]);
    const [out, weights] = mha.forward(x, x, x, { needWeights: true });
    assert.deepEqual([out.shape, weights!.shape], [[2, 7, 8], [2, 7, 7]]);
    const [, none] = mha.forward(x, x, x, { needWeights: false });
    assert.equal(none, null);
    const [o2, w2] = separate.forward(zeros([4, 2, 8]), zeros([6, 2, 3]), zeros([6, 2, 5]), {
      averageAttnWeights: false,
    });
    assert.deepEqual([o2.shape, w2!.shape], [[4, 2, 8], [2, 4, 4, 6]]);
  });
  assertThrows(() => new MultiheadAttention(6, 4), /embedDim 6 must be a multiple of numHeads/);
  assertThrows(
    () => tidy(() => separate.forward(zeros([4, 2, 8]), zeros([6, 2, 4]), zeros([6, 2, 5]))),
    /the key projection \[8, 3\] does not fit key \[6, 2, 4\]/,
  );
  assertThrows(
    () =>
      tidy(() =>
        mha.forward(zeros([2, 3, 8]), zeros([2, 3, 8]), zeros([2, 3, 8]), {
          attnMask: zeros([3, 4]),
        })
      ),
    /attnMask \[3, 4\] must be \[3, 3\] or \[4, 3, 3\]/,
  );
  mha.dispose();
  separate.dispose();
});

for (const [activation, normFirst] of [["relu", false], ["gelu", true]] as const) {
  Deno.test(`TransformerEncoderLayer (${activation}, normFirst ${normFirst}) matches the reference and finite differences in its input`, async () => {
    const e = 4, heads = 2, ff = 6, l = 3, n = 2;
    manualSeed(11);
    const layer = new TransformerEncoderLayer(e, heads, {
      dimFeedforward: ff,
      activation,
      normFirst,
    }).eval();
    // Non-trivial norms: random weights and biases.
    const state = layer.stateDict();
    layer.loadStateDict({
      "norm1.weight": { shape: [e], data: Float32Array.from(randomArray(e, 1, 0.5, 1.5)) },
      "norm1.bias": { shape: [e], data: Float32Array.from(randomArray(e, 2)) },
      "norm2.weight": { shape: [e], data: Float32Array.from(randomArray(e, 3, 0.5, 1.5)) },
      "norm2.bias": { shape: [e], data: Float32Array.from(randomArray(e, 4)) },
      "self_attn.in_proj_bias": { shape: [3 * e], data: Float32Array.from(randomArray(3 * e, 5)) },
      "self_attn.out_proj.bias": { shape: [e], data: Float32Array.from(randomArray(e, 6)) },
      ...Object.fromEntries(
        Object.entries(state).filter(([k]) =>
          !k.startsWith("norm") && k !== "self_attn.in_proj_bias" &&
          k !== "self_attn.out_proj.bias"
        ),
      ),
    });
    assert.deepEqual(Object.keys(layer.stateDict()), [
      "self_attn.in_proj_weight",
      "self_attn.in_proj_bias",
      "self_attn.out_proj.weight",
      "self_attn.out_proj.bias",
      "linear1.weight",
      "linear1.bias",
      "linear2.weight",
      "linear2.bias",
      "norm1.weight",
      "norm1.bias",
      "norm2.weight",
      "norm2.bias",
    ]);
    const params: Record<string, Float32Array> = {};
    for (const [k, t] of Object.entries(layer.stateDict())) params[k] = await t.toArray();
    const padding = [0, 0, 1, 0, 0, 0];
    await testOp({
      name: `encoder layer ${activation} normFirst=${normFirst}`,
      inputs: [[l, n, e]],
      gpu: ([x]) =>
        layer.forward(x, {
          srcKeyPaddingMask: tensor(Uint8Array.from(padding), [n, l], { dtype: "u8" }),
        }),
      reference: ([x]) =>
        encoderLayerReference(x, params, { l, n, e, heads, ff, eps: 1e-5 }, activation, normFirst, {
          keyPadding: Float64Array.from(padding, (b) => b ? -Infinity : 0),
        }),
      forwardTolerance: { atol: 1e-5, rtol: 1e-4 },
    });
    layer.dispose();
  });
}

Deno.test("TransformerEncoderLayer: batchFirst keeps [N, L, E]; bad activation is named", () => {
  const layer = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16, batchFirst: true });
  tidy(() => assert.deepEqual(layer.forward(zeros([3, 5, 8])).shape, [3, 5, 8]));
  layer.dispose();
  assertThrows(
    () => new TransformerEncoderLayer(8, 2, { activation: "tanh" as "relu" }),
    /activation must be "relu" or "gelu", got "tanh"/,
  );
});

Deno.test("reference sanity: sdpa weights sum to 1", () => {
  const { weights } = sdpaReference(
    randomArray(6, 1),
    randomArray(9, 2),
    randomArray(9, 3),
    1,
    2,
    3,
    3,
    3,
  );
  assertClose([weights[0] + weights[1] + weights[2], weights[3] + weights[4] + weights[5]], [1, 1]);
});

Deno.test("MultiheadAttention and TransformerEncoderLayer training steps (dropout on) leak no GPU memory", () => {
  const layer = new TransformerEncoderLayer(8, 2, { dimFeedforward: 12, dropout: 0.2 });
  const mha = new MultiheadAttention(8, 2, { dropout: 0.3 });
  const mask = tensor(Uint8Array.from([0, 0, 0, 1, 0, 0, 1, 0, 0, 0]), [2, 5], { dtype: "u8" });
  const step = () => {
    const x = randUniform([5, 2, 8], { seed: 3 });
    const y = layer.forward(x, { srcKeyPaddingMask: mask });
    const [out, weights] = mha.forward(y, y, y);
    tidy(() => add(sum(out), sum(weights!)).backward());
    for (const t of [x, y, out, weights!]) t.dispose();
    for (const p of [...layer.parameters(), ...mha.parameters()]) {
      p.grad?.dispose();
      p.grad = null;
    }
  };
  step();
  const before = memoryStats().liveBuffers;
  step();
  step();
  assert.equal(memoryStats().liveBuffers, before);
  mask.dispose();
  layer.dispose();
  mha.dispose();
});
