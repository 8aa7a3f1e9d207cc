/**
 * Sequence-layer rows of the bench: wgtorch and TF.js (WebGPU backend) run the same layer on the
 * same shapes in the same process, milliseconds per call (median of timed windows, each ended by
 * a readback that waits for all the window's GPU work).
 *
 * - LSTM: N = 32, input 64, hidden 128, T = 16; forward + backward of sum(output) (wgtorch's
 *   `LSTM`; TF.js's `tf.layers.lstm` with sigmoid recurrent activation, as PyTorch, under
 *   `tf.variableGrads`).
 * - Attention: N = 8, T = 64, E = 128, 4 heads, forward only, projections included (wgtorch's
 *   `MultiheadAttention`, weights not returned; TF.js: the same computation written with
 *   `tf.matMul` + `tf.softmax`).
 *
 * Run: `deno run -A bench/seq_cases.ts`.
 *
 * @module
 */

// deno-lint-ignore no-import-prefix
import type * as tfjs from "npm:@tensorflow/tfjs@4.22.0";
import type { Tf } from "./tfjs_models.ts";
import { randUniform, sum, sync, tidy } from "../mod.ts";
import { LSTM } from "../nn/modules/rnn.ts";
import { MultiheadAttention } from "../nn/modules/attention.ts";

/** One sequence-layer case, as both libraries run it. */
export interface SeqCase {
  /** Row label. */
  name: string;
  /** wgtorch: builds the layer and inputs, returns one call and a cleanup. */
  wgtorch: () => { call: () => void; dispose: () => void };
  /** TF.js: builds the layer and inputs, returns one call (its result to wait on) and a cleanup. */
  tfjs: (tf: Tf) => { call: () => tfjs.Tensor; dispose: () => void };
}

const LSTM_SHAPE = { n: 32, input: 64, hidden: 128, t: 16 };
const ATTENTION_SHAPE = { n: 8, t: 64, e: 128, heads: 4 };

/** The cases of `deno run -A bench/seq_cases.ts`. */
export const SEQ_CASES: readonly SeqCase[] = [
  {
    name: `LSTM fwd+bwd N=${LSTM_SHAPE.n} in=${LSTM_SHAPE.input} H=${LSTM_SHAPE.hidden} ` +
      `T=${LSTM_SHAPE.t}`,
    wgtorch: () => {
      const { n, input, hidden, t } = LSTM_SHAPE;
      const lstm = new LSTM(input, hidden);
      const x = randUniform([t, n, input], { seed: 1 });
      return {
        call: () => {
          const [out, [hN, cN]] = lstm.forward(x);
          tidy(() => sum(out).backward());
          for (const r of [out, hN, cN]) r.dispose();
          for (const p of lstm.parameters()) {
            p.grad?.dispose();
            p.grad = null;
          }
        },
        dispose: () => {
          x.dispose();
          lstm.dispose();
        },
      };
    },
    tfjs: (tf) => {
      const { n, input, hidden, t } = LSTM_SHAPE;
      const layer = tf.layers.lstm({
        units: hidden,
        returnSequences: true,
        recurrentActivation: "sigmoid",
        inputShape: [t, input],
      });
      const x = tf.randomUniform([n, t, input], -1, 1);
      layer.apply(x); // builds the weights
      return {
        call: () => {
          const { value, grads } = tf.variableGrads(() =>
            tf.sum(layer.apply(x) as tfjs.Tensor) as tfjs.Scalar
          );
          const keep = Object.values(grads)[0];
          for (const g of Object.values(grads)) if (g !== keep) g.dispose();
          value.dispose();
          return keep;
        },
        dispose: () => {
          x.dispose();
          layer.dispose();
        },
      };
    },
  },
  {
    name: `attention fwd N=${ATTENTION_SHAPE.n} T=${ATTENTION_SHAPE.t} E=${ATTENTION_SHAPE.e} ` +
      `heads=${ATTENTION_SHAPE.heads}`,
    wgtorch: () => {
      const { n, t, e, heads } = ATTENTION_SHAPE;
      const mha = new MultiheadAttention(e, heads);
      const x = randUniform([t, n, e], { seed: 2 });
      return {
        call: () => {
          const [out] = mha.forward(x, x, x, { needWeights: false });
          out.dispose();
        },
        dispose: () => {
          x.dispose();
          mha.dispose();
        },
      };
    },
    tfjs: (tf) => {
      const { n, t, e, heads } = ATTENTION_SHAPE;
      const hd = e / heads;
      const x = tf.randomUniform([n * t, e], -1, 1);
      const wIn = tf.randomUniform([e, 3 * e], -0.1, 0.1);
      const bIn = tf.zeros([3 * e]);
      const wOut = tf.randomUniform([e, e], -0.1, 0.1);
      const bOut = tf.zeros([e]);
      return {
        call: () =>
          tf.tidy(() => {
            const qkv = tf.add(tf.matMul(x, wIn), bIn);
            const [q, k, v] = tf.split(qkv, 3, 1).map((p) =>
              tf.transpose(tf.reshape(p, [n, t, heads, hd]), [0, 2, 1, 3])
            );
            const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd));
            const out = tf.matMul(tf.softmax(scores), v);
            const merged = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [n * t, e]);
            return tf.add(tf.matMul(merged, wOut), bOut);
          }),
        dispose: () => {
          for (const w of [x, wIn, bIn, wOut, bOut]) w.dispose();
        },
      };
    },
  },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** wgtorch's milliseconds per call: median of `windows` windows of `calls` calls. */
export async function wgtorchSeqMs(c: SeqCase, windows = 3, calls = 5): Promise<number> {
  const { call, dispose } = c.wgtorch();
  try {
    for (let i = 0; i < 2; i++) call();
    await sync();
    const times: number[] = [];
    for (let w = 0; w < windows; w++) {
      const start = performance.now();
      for (let i = 0; i < calls; i++) call();
      await sync();
      times.push((performance.now() - start) / calls);
    }
    return median(times);
  } finally {
    dispose();
  }
}

/** TF.js's milliseconds per call (its webgpu backend set up). */
export async function tfjsSeqMs(tf: Tf, c: SeqCase, windows = 3, calls = 5): Promise<number> {
  const { call, dispose } = c.tfjs(tf);
  const wait = async (t: tfjs.Tensor) => {
    const one = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [0], [1]));
    await one.data();
    one.dispose();
    t.dispose();
  };
  try {
    for (let i = 0; i < 2; i++) await wait(call());
    const times: number[] = [];
    for (let w = 0; w < windows; w++) {
      const start = performance.now();
      let last: tfjs.Tensor | undefined;
      for (let i = 0; i < calls; i++) {
        last?.dispose();
        last = call();
      }
      await wait(last!);
      times.push((performance.now() - start) / calls);
    }
    return median(times);
  } finally {
    dispose();
  }
}

if (import.meta.main) {
  const { init } = await import("../mod.ts");
  const { setupTfjs, tfjsModule } = await import("./tfjs.ts");
  await init();
  await setupTfjs();
  const tf = await tfjsModule();
  console.log("| case | wgtorch ms | TF.js webgpu ms | TF.js / wgtorch |\n|---|---:|---:|---:|");
  for (const c of SEQ_CASES) {
    const ours = await wgtorchSeqMs(c);
    const theirs = await tfjsSeqMs(tf, c);
    console.log(
      `| ${c.name} | ${ours.toFixed(1)} | ${theirs.toFixed(1)} | ${(theirs / ours).toFixed(2)} |`,
    );
  }
}
