/**
 * The pooling shapes measured against TF.js (`tf.avgPool`, NHWC, same data sizes): the 2×2 and
 * the 3×3 stride-2 padding-1 average pools of a [32, 16, 32, 32] activation. Throughput is
 * reported as GB/s of input read plus output written (f32), forward only.
 *
 * @module
 */

/** One average-pooling case: an NCHW input and a square window. */
export interface PoolCase {
  /** Short description. */
  name: string;
  /** Input [N, C, H, W] (TF.js gets [N, H, W, C]). */
  shape: readonly [number, number, number, number];
  /** Square window size. */
  kernelSize: number;
  /** Step between windows. */
  stride: number;
  /** Border on each side (TF.js: the same explicit padding). */
  padding: number;
}

/** The average-pooling cases of the TF.js comparison. */
export const AVG_POOL_CASES: readonly PoolCase[] = [
  {
    name: "avgPool 2x2 [32,16,32,32]",
    shape: [32, 16, 32, 32],
    kernelSize: 2,
    stride: 2,
    padding: 0,
  },
  {
    name: "avgPool 3x3 s2 p1 [32,16,32,32]",
    shape: [32, 16, 32, 32],
    kernelSize: 3,
    stride: 2,
    padding: 1,
  },
];

/** Bytes an average pool of `c` reads and writes (f32 input and output). */
export function poolBytes(c: PoolCase): number {
  const [n, ch, h, w] = c.shape;
  const out = (size: number) => Math.floor((size + 2 * c.padding - c.kernelSize) / c.stride) + 1;
  return 4 * (n * ch * h * w + n * ch * out(h) * out(w));
}
