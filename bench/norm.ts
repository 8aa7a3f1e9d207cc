/**
 * Layer norm, wgtorch vs TF.js (WebGPU backend) side by side in one process on the same
 * adapter: forward, and forward + backward (x, weight and bias gradients), for each of
 * `NORM_CASES`. TF.js computes it as its layers do, from `tf.moments` and arithmetic, with
 * `tf.grads` for the backward (its `tf.layers.layerNormalization` was slower still here).
 *
 * Each figure is the median over 5 windows of the time per step; a window ends by reading back
 * one value that depends on its last step. Run: `deno run -A bench/norm.ts`.
 *
 * @module
 */

// Inline npm: specifiers on purpose: TF.js is a bench-only dependency kept out of deno.json.
// deno-lint-ignore no-import-prefix
import type * as tfjs from "npm:@tensorflow/tfjs@4.22.0";
import { NORM_CASES } from "./norm_cases.ts";
import { setupTfjs } from "./tfjs.ts";
import { init } from "../nn/gpu/device.ts";
import { sync } from "../nn/gpu/stream.ts";
import { layerNorm } from "../nn/ops/norm.ts";
import { tidy } from "../nn/scope.ts";
import { randUniform } from "../nn/tensor.ts";

const WINDOWS = 5;
const TARGET_WINDOW_MS = 400;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

/** Median milliseconds per `step`, each window ended by `wait`. */
async function msPerStep(step: () => void, wait: () => Promise<void>): Promise<number> {
  for (let i = 0; i < 3; i++) step();
  await wait();
  const t0 = performance.now();
  step();
  await wait();
  const steps = Math.max(3, Math.min(200, Math.round(TARGET_WINDOW_MS / (performance.now() - t0))));
  const windows: number[] = [];
  for (let w = 0; w < WINDOWS; w++) {
    const start = performance.now();
    for (let i = 0; i < steps; i++) step();
    await wait();
    windows.push((performance.now() - start) / steps);
  }
  return median(windows);
}

/** One row of the comparison, in ms per step. */
export interface NormBenchRow {
  /** The case's name. */
  name: string;
  /** wgtorch, forward. */
  forward: number;
  /** TF.js, forward. */
  tfjsForward: number;
  /** wgtorch, forward and backward. */
  forwardBackward: number;
  /** TF.js, forward and backward. */
  tfjsForwardBackward: number;
}

async function wgtorchTimes(shape: readonly number[]): Promise<[number, number]> {
  const d = shape.at(-1)!;
  const x = randUniform(shape, { seed: 1, requiresGrad: true });
  const weight = randUniform([d], { seed: 2, low: 0.5, high: 1.5, requiresGrad: true });
  const bias = randUniform([d], { seed: 3, requiresGrad: true });
  const grad = randUniform(shape, { seed: 4 });
  const clear = () => {
    for (const t of [x, weight, bias]) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  const forward = await msPerStep(() => tidy(() => void layerNorm(x, d, { weight, bias })), sync);
  const both = await msPerStep(() =>
    tidy(() => {
      clear();
      layerNorm(x, d, { weight, bias }).backward({ grad });
    }), sync);
  clear();
  for (const t of [x, weight, bias, grad]) t.dispose();
  return [forward, both];
}

async function tfjsTimes(tf: typeof tfjs, shape: readonly number[]): Promise<[number, number]> {
  const d = shape.at(-1)!;
  const x = tf.randomUniform([...shape]);
  const weight = tf.randomUniform([d], 0.5, 1.5);
  const bias = tf.randomUniform([d]);
  const dy = tf.randomUniform([...shape]);
  const norm = (x: tfjs.Tensor, weight: tfjs.Tensor, bias: tfjs.Tensor) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return x.sub(mean).mul(tf.rsqrt(variance.add(1e-5))).mul(weight).add(bias);
  };
  const grads = tf.grads((x, weight, bias) => norm(x, weight, bias));
  let last: tfjs.Tensor[] = [];
  const wait = async () => void await last[0]?.slice([0], [1]).data();
  const forward = await msPerStep(() => {
    tf.dispose(last);
    last = [tf.tidy(() => norm(x, weight, bias))];
  }, wait);
  const both = await msPerStep(() => {
    tf.dispose(last);
    last = tf.tidy(() => grads([x, weight, bias], dy));
  }, wait);
  tf.dispose([...last, x, weight, bias, dy]);
  return [forward, both];
}

/** Times every case on both libraries. */
export async function normBench(): Promise<NormBenchRow[]> {
  await init();
  await setupTfjs();
  // deno-lint-ignore no-import-prefix
  const tf: typeof tfjs = await import("npm:@tensorflow/tfjs@4.22.0");
  const rows: NormBenchRow[] = [];
  for (const c of NORM_CASES) {
    const [forward, forwardBackward] = await wgtorchTimes(c.shape);
    const [tfjsForward, tfjsForwardBackward] = await tfjsTimes(tf, c.shape);
    rows.push({ name: c.name, forward, tfjsForward, forwardBackward, tfjsForwardBackward });
  }
  return rows;
}

if (import.meta.main) {
  const rows = await normBench();
  console.log("| case | wgtorch fwd | TF.js fwd | wgtorch fwd+bwd | TF.js fwd+bwd |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const r of rows) {
    const ms = (v: number) => `${v.toFixed(2)} ms`;
    console.log(
      `| ${r.name} | ${ms(r.forward)} | ${ms(r.tfjsForward)} | ${ms(r.forwardBackward)} | ` +
        `${ms(r.tfjsForwardBackward)} |`,
    );
  }
}
