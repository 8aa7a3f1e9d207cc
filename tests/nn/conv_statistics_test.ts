/**
 * The conv2d forward kernel's partial statistics (`runForwardWithStatistics`), which batch norm
 * merges instead of reading the convolution's output: merged in float64 here, they must give each
 * channel's exact count and the mean and sum of squared deviations of the output the same kernel
 * wrote, on shapes whose blocks overhang the output's rows, columns and channels, and on an
 * output whose mean is far larger than its spread.
 */
import { runForwardWithStatistics } from "../../nn/ops/conv2d_forward.ts";
import type { ConvShape } from "../../nn/ops/conv2d_shape.ts";
import { tensor } from "../../nn/tensor.ts";
import { assert } from "../assert.ts";
import { gpuReady, randomArray } from "../testing.ts";

await gpuReady();

interface Case {
  x: [number, number, number, number];
  /** Output channels and the square kernel's size. */
  w: [number, number];
  stride?: number;
  padding?: number;
  /** Added to every bias (an output far from 0). */
  offset?: number;
  /** Scales the weights (with `offset`: a small spread). */
  weightScale?: number;
}

function shapeOf({ x: [batch, inChannels, height, width], w: [outChannels, k], ...c }: Case) {
  const stride = c.stride ?? 1, padding = c.padding ?? 0;
  const out = (size: number) => Math.floor((size + 2 * padding - k) / stride) + 1;
  const shape: ConvShape = {
    batch,
    inChannels,
    outChannels,
    height,
    width,
    kernelHeight: k,
    kernelWidth: k,
    stride,
    padding,
    outHeight: out(height),
    outWidth: out(width),
  };
  return shape;
}

const cases: Case[] = [
  // The study's first block.
  { x: [4, 1, 28, 28], w: [10, 5] },
  // 7 x 9 outputs: blocks overhang the rows and the columns.
  { x: [3, 2, 9, 11], w: [3, 3] },
  // 7 channels, padding: the last channel block overlaps the one before.
  { x: [2, 3, 16, 16], w: [7, 3], padding: 1 },
  { x: [2, 2, 17, 17], w: [5, 3], stride: 2 },
  // Mean ~1000, spread ~0.01: float32 keeps the spread only if each lane centres its values.
  { x: [4, 2, 10, 10], w: [3, 3], offset: 1000, weightScale: 1e-2 },
];

for (const c of cases) {
  const shape = shapeOf(c);
  const name = `conv2d partial statistics: x [${c.x}], ${c.w[0]} channels ${c.w[1]}x${c.w[1]}` +
    `, stride ${shape.stride}, padding ${shape.padding}, output ${shape.outHeight}x${shape.outWidth}` +
    (c.offset ? `, offset ${c.offset}` : "");
  Deno.test(name, async () => {
    const { batch, inChannels: C, outChannels: O, kernelHeight: K } = shape;
    const x = tensor(
      Float32Array.from(randomArray(batch * C * shape.height * shape.width, 3)),
      c.x,
    );
    const scale = c.weightScale ?? 1;
    const w = tensor(
      Float32Array.from(randomArray(O * C * K * K, 4), (v) => v * scale),
      [O, C, K, K],
    );
    const b = tensor(Float32Array.from(randomArray(O, 5), (v) => v + (c.offset ?? 0)), [O]);
    const { out, partials, perChannel } = runForwardWithStatistics(x, w, b, shape);
    const values = await out.toArray();
    const parts = await partials.toArray();
    const plane = shape.outHeight * shape.outWidth;
    const count = batch * plane;
    for (let ch = 0; ch < O; ch++) {
      // float64 statistics of the output the kernel wrote.
      let sum = 0;
      for (let n = 0; n < batch; n++) {
        for (let i = 0; i < plane; i++) sum += values[(n * O + ch) * plane + i];
      }
      const mean = sum / count;
      let m2 = 0;
      for (let n = 0; n < batch; n++) {
        for (let i = 0; i < plane; i++) m2 += (values[(n * O + ch) * plane + i] - mean) ** 2;
      }
      // The partials merged in float64 (Chan et al.).
      let total = 0, merged = 0, mergedM2 = 0;
      for (let k = 0; k < perChannel; k++) {
        const [nk, meanK, m2K] = parts.slice(
          4 * (ch * perChannel + k),
          4 * (ch * perChannel + k) + 3,
        );
        const delta = meanK - merged;
        const next = total + nk;
        merged += delta * nk / next;
        mergedM2 += m2K + delta * delta * total * nk / next;
        total = next;
      }
      assert.equal(total, count, `channel ${ch}: count`);
      const spread = Math.sqrt(m2 / count);
      assert.ok(
        Math.abs(merged - mean) <= 1e-6 * Math.abs(mean) + 1e-4 * spread,
        `channel ${ch}: mean ${merged} against ${mean} (spread ${spread})`,
      );
      // With the offset, the output's own float32 rounding (~6e-5 at 1000) is a part of its
      // ~0.01 spread, so the lanes' float32 centring leaves more behind.
      const m2Tolerance = c.offset ? 1e-3 : 1e-5;
      assert.ok(
        Math.abs(mergedM2 - m2) <= m2Tolerance * m2,
        `channel ${ch}: squared deviations ${mergedM2} against ${m2}`,
      );
    }
    for (const t of [x, w, b, out, partials]) t.dispose();
  });
}
