/**
 * wgtorch vs TF.js (webgpu) on `AVG_POOL_CASES`, side by side in one process: forward time and
 * GB/s (input read + output written) of `avgPool2d` / `tf.avgPool` (or, with `max`, `maxPool2d` /
 * `tf.maxPool`), median of 5 windows of `reps` calls each, each window awaited.
 *
 * Run: `deno run -A bench/pool_tfjs.ts [reps=40] [avg|max]`.
 *
 * @module
 */
import { init } from "../nn/gpu/device.ts";
import { avgPool2d } from "../nn/ops/avg_pool.ts";
import { maxPool2d } from "../nn/ops/max_pool.ts";
import { randUniform } from "../nn/tensor.ts";
import { tidy } from "../nn/scope.ts";
import { sync } from "../nn/gpu/stream.ts";
import { AVG_POOL_CASES, poolBytes } from "./pool_cases.ts";
import { setupTfjs } from "./tfjs.ts";
// deno-lint-ignore no-import-prefix
import * as tf from "npm:@tensorflow/tfjs@4.22.0";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const reps = Number(Deno.args[0] ?? 40), windows = 5;

if (import.meta.main) await main();

async function main(): Promise<void> {
  await init();
  await setupTfjs();
  const op = Deno.args[1] ?? "avg";
  for (const c of AVG_POOL_CASES) {
    const [n, ch, h, w] = c.shape;
    const x = randUniform([n, ch, h, w], { seed: 1 });
    const o = { kernelSize: c.kernelSize, stride: c.stride, padding: c.padding };
    const run = () => tidy(() => void (op === "max" ? maxPool2d(x, o) : avgPool2d(x, o)));
    for (let i = 0; i < 3; i++) run();
    await sync();
    const ours: number[] = [];
    for (let k = 0; k < windows; k++) {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) run();
      await sync();
      ours.push((performance.now() - t0) / reps);
    }
    x.dispose();
    const tx = tf.randomUniform([n, h, w, ch], -1, 1) as tf.Tensor4D;
    const trun = () =>
      op === "max"
        ? tf.maxPool(tx, c.kernelSize, c.stride, c.padding)
        : tf.avgPool(tx, c.kernelSize, c.stride, c.padding);
    for (let i = 0; i < 3; i++) {
      const t = trun();
      await t.data();
      t.dispose();
    }
    const theirs: number[] = [];
    for (let k = 0; k < windows; k++) {
      const t0 = performance.now();
      let last: tf.Tensor | undefined;
      for (let i = 0; i < reps; i++) {
        last?.dispose();
        last = trun();
      }
      const one = tf.tidy(() => tf.slice(tf.reshape(last!, [-1]), [0], [1]));
      await one.data();
      one.dispose();
      last!.dispose();
      theirs.push((performance.now() - t0) / reps);
    }
    tx.dispose();
    const gbs = (ms: number) => (poolBytes(c) / (ms / 1000) / 1e9).toFixed(2);
    console.log(
      `${op} ${c.name}: wgtorch ${median(ours).toFixed(3)} ms = ${gbs(median(ours))} GB/s | ` +
        `TF.js ${median(theirs).toFixed(3)} ms = ${gbs(median(theirs))} GB/s`,
    );
  }
}
