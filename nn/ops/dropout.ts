/**
 * Inverted dropout with a counter-based mask: element i is kept when
 * `hash(seed, i) >= round(p * 2^32)`, so the mask needs no random state on the GPU, the seed
 * travels through `params()` (one pipeline serves every step), and the backward pass recomputes
 * the mask from the seed instead of saving it. `dropoutMask` computes the same mask on the CPU.
 * `dropout2d` (channel dropout) draws the same hash per channel (index n * C + c) instead of per
 * element, so its mask is `dropoutMask(N * C, p, seed)`.
 *
 * The hash is `mix(mix(i) ^ mix(seed + 0x9e3779b9))`, with `mix` the "lowbias32" integer finaliser
 * (Chris Wellons' hash-prospector): a bijection of u32 with good avalanche.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { f32, u32 } from "../gpu/kernel.ts";
import type { KernelPolicy } from "../gpu/policy.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { itemLoop, type LoopPlan, loopPlan } from "../gpu/item_loop.ts";
import { formatShape, Tensor, zeros } from "../tensor.ts";

const GOLDEN = 0x9e3779b9;

/** Options of `dropout`. */
export interface DropoutOptions {
  /** Probability of zeroing an element, in [0, 1]. */
  p: number;
  /** Whether to drop (training) or pass x through unchanged (evaluation). */
  training: boolean;
  /** Seed of the mask: a u32. Use a new one every step; the same seed gives the same mask. */
  seed: number;
}

/** lowbias32: an invertible u32 → u32 mix. */
function mix(value: number): number {
  let x = value >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The u32 hash of element `index` under `seed`, as the dropout kernel computes it. */
function dropoutHash(seed: number, index: number): number {
  return mix(mix(index) ^ mix(seed + GOLDEN));
}

/** Elements whose hash is below this are dropped: round(p * 2^32), capped to a u32. */
function dropThreshold(p: number): number {
  return Math.min(Math.round(p * 2 ** 32), 0xffffffff);
}

/** The keep mask (1 kept, 0 dropped) that `dropout` draws for `size` elements. */
export function dropoutMask(size: number, p: number, seed: number): Uint8Array {
  checkDropoutOptions({ p, training: true, seed });
  const threshold = dropThreshold(p);
  return Uint8Array.from(
    { length: size },
    (_, i) => p < 1 && dropoutHash(seed, i) >= threshold ? 1 : 0,
  );
}

/** Throws when `options` are not valid dropout options (p in [0, 1], a u32 seed). */
export function checkDropoutOptions(options: DropoutOptions): void {
  const { p, seed } = options;
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout: p must be in [0, 1], got ${p}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`dropout: seed must be an integer in [0, 2^32), got ${seed}`);
  }
}

/**
 * WGSL: the threshold and scale of `p`, lowbias32 on four lanes (`mix4`) and on one (`mix1`),
 * and the keep tests `kept4` and `kept1`. Kernels of other ops that apply dropout's mask (fused
 * epilogues) use it too.
 */
export function maskPrelude(p: number): string {
  return /* wgsl */ `
const THRESHOLD: u32 = ${u32(dropThreshold(p))};
const SCALE: f32 = ${f32(1 / (1 - p))};

fn mix4(value: vec4<u32>) -> vec4<u32> {
  var h = value;
  h ^= h >> vec4<u32>(16u);
  h *= vec4<u32>(0x7feb352du);
  h ^= h >> vec4<u32>(15u);
  h *= vec4<u32>(0x846ca68bu);
  h ^= h >> vec4<u32>(16u);
  return h;
}

fn mix1(value: u32) -> u32 {
  var h = value;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

// Whether the elements (or channels) at index are kept under the seed's key.
fn kept4(index: vec4<u32>, key: u32) -> vec4<bool> {
  return mix4(mix4(index) ^ vec4<u32>(key)) >= vec4<u32>(THRESHOLD);
}

fn kept1(index: u32, key: u32) -> bool {
  return mix1(mix1(index) ^ key) >= THRESHOLD;
}`;
}

/** WGSL: the mask's key of the seed `params.seed` (a `u32`), as `dropout`'s kernel derives it. */
export const MASK_KEY_WGSL = `mix1(params.seed + ${u32(GOLDEN)})`;

/** Narrow workgroups looping over the vectors of `size` elements. */
function vectorPlan(size: number, policy: KernelPolicy): LoopPlan {
  return loopPlan(Math.ceil(size / 4), policy);
}

const APPLY_MASK: KernelSpec<{ size: number; p: number }, LoopPlan> = {
  name: "dropout",
  key: ({ size, p }) => `${size}_p${p}`,
  bindings: () => [
    { name: "x", role: "input", readOnce: true },
    { name: "out", role: "write", type: "vec4<f32>" },
  ],
  plan: ({ size }, policy) => vectorPlan(size, policy),
  params: "seed: u32",
  prelude: ({ p }) => maskPrelude(p),
  body: ({ size }, { plan }) => /* wgsl */ `
  let key = mix4(vec4<u32>(params.seed + ${u32(GOLDEN)})).x;${
    // Elements 4j..4j+3; the last vector may run into the buffer's padding, which nothing reads.
    itemLoop(
      Math.ceil(size / 4),
      plan,
      `
      let i = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u);
      let keep = kept4(i, key);
      // A multiply, not a select: a dropped NaN stays NaN (NaN * 0), as in PyTorch.
      out[j] = xVec4(j) * select(vec4<f32>(0.0), vec4<f32>(SCALE), keep);`,
      "j",
    )}`,
};

/** Encodes out = x * keep(seed, i) / (1 - p); forward and backward both use it. */
function applyMask(x: Tensor, p: number, seed: number): Tensor {
  const out = Tensor.empty(x.shape);
  runKernel(APPLY_MASK, { size: x.size, p }, { x, out }, {
    params: new Uint32Array([seed]),
  });
  return out;
}

/**
 * Inverted dropout: in training, zeroes each element with probability p and scales the kept
 * ones by 1 / (1 - p); the mask is `dropoutMask(x.size, p, seed)`. Returns a view of x when not
 * training or p == 0, and zeros when p == 1. Differentiable (the backward recomputes the mask).
 */
export function dropout(x: Tensor, options: DropoutOptions): Tensor {
  checkDropoutOptions(options);
  if (x.dtype !== "f32") throw new Error(`dropout: needs an f32 tensor, got ${x.dtype}`);
  const { p, training, seed } = options;
  if (!training || p === 0) return recordOp("dropout", x.view(), [x], (grad) => [grad.view()]);
  const shape = x.shape;
  if (p === 1) return recordOp("dropout", zeros(shape), [x], () => [zeros(shape)]);
  const out = applyMask(x, p, seed);
  return recordOp("dropout", out, [x], (grad) => [applyMask(grad, p, seed)]);
}

/** Options of `dropout2d`. */
export interface Dropout2dOptions {
  /** Probability of zeroing a channel, in [0, 1]. */
  p: number;
  /** Whether to drop (training) or pass x through unchanged (evaluation). */
  training: boolean;
  /**
   * Seed of the mask: a u32 (default 0). Use a new one every step (the `Dropout2d` module draws
   * it from its generator); the same seed gives the same mask.
   */
  seed?: number;
}

/** The shape `dropout2d` bakes in: elements, and elements per channel. */
interface ChannelMask {
  size: number;
  planeSize: number;
  p: number;
}

/** out = x * keep(seed, channel of i) / (1 - p), four elements per step. */
const APPLY_CHANNEL_MASK: KernelSpec<ChannelMask, LoopPlan> = {
  name: "dropout2d",
  key: ({ size, planeSize, p }) => `${size}_${planeSize}_p${p}`,
  bindings: () => [
    { name: "x", role: "input", readOnce: true },
    { name: "out", role: "write", type: "vec4<f32>" },
  ],
  plan: ({ size }, policy) => vectorPlan(size, policy),
  params: "seed: u32",
  prelude: ({ p }) => maskPrelude(p),
  body: ({ size, planeSize }, { plan }) => /* wgsl */ `
  let key = mix4(vec4<u32>(params.seed + ${u32(GOLDEN)})).x;${
    itemLoop(
      Math.ceil(size / 4),
      plan,
      `
      // The channel (n * C + c) of elements 4j..4j+3: one hash per channel.
      let channel = (vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u)) / vec4<u32>(${u32(planeSize)});
      let keep = kept4(channel, key);
      out[j] = xVec4(j) * select(vec4<f32>(0.0), vec4<f32>(SCALE), keep);`,
      "j",
    )
  }`,
};

function applyChannelMask(x: Tensor, planeSize: number, p: number, seed: number): Tensor {
  const out = Tensor.empty(x.shape);
  runKernel(APPLY_CHANNEL_MASK, { size: x.size, planeSize, p }, { x, out }, {
    params: new Uint32Array([seed]),
  });
  return out;
}

/**
 * Channel dropout, as PyTorch 1.13's `dropout2d`: x is [N, C, H, W] (or [N, C, L]); in training
 * each channel (n, c) is zeroed whole with probability p and the kept ones are scaled by
 * 1 / (1 - p); the mask is `dropoutMask(N * C, p, seed)` (channel n * C + c). Returns a view of x
 * when not training or p == 0, and zeros when p == 1. Differentiable (the backward recomputes
 * the mask from the seed).
 */
export function dropout2d(x: Tensor, options: Dropout2dOptions): Tensor {
  const { p, training, seed = 0 } = options;
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout2d: p must be in [0, 1], got ${p}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`dropout2d: seed must be an integer in [0, 2^32), got ${seed}`);
  }
  if (x.rank !== 4 && x.rank !== 3) {
    throw new Error(
      `dropout2d: needs x of shape [N, C, H, W] (rank 4) or [N, C, L] (rank 3), got ` +
        `${formatShape(x.shape)} (rank ${x.rank})`,
    );
  }
  if (x.dtype !== "f32") throw new Error(`dropout2d: needs an f32 tensor, got ${x.dtype}`);
  if (!training || p === 0 || x.size === 0) {
    return recordOp("dropout2d", x.view(), [x], (grad) => [grad.view()]);
  }
  const shape = x.shape;
  if (p === 1) return recordOp("dropout2d", zeros(shape), [x], () => [zeros(shape)]);
  const planeSize = x.size / (shape[0] * shape[1]);
  const out = applyChannelMask(x, planeSize, p, seed);
  return recordOp("dropout2d", out, [x], (grad) => [applyChannelMask(grad, planeSize, p, seed)]);
}
