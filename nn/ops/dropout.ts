/**
 * Inverted dropout with a counter-based mask: element i is kept when
 * `hash(seed, i) >= round(p * 2^32)`, so the mask needs no random state on the GPU, the seed
 * travels through `params()` (one pipeline serves every step), and the backward pass recomputes
 * the mask from the seed instead of saving it. `dropoutMask` computes the same mask on the CPU.
 *
 * The hash is `mix(mix(i) ^ mix(seed + 0x9e3779b9))`, with `mix` the "lowbias32" integer finaliser
 * (Chris Wellons' hash-prospector): a bijection of u32 with good avalanche.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { f32, grid, kernel, u32, workgroupIndex } from "../kernel.ts";
import { dispatch, params } from "../stream.ts";
import { Tensor, zeros } from "../tensor.ts";

const WORKGROUP = 64;
const PER_INVOCATION = 4;
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
export function dropoutHash(seed: number, index: number): number {
  return mix(mix(index) ^ mix(seed + GOLDEN));
}

/** Elements whose hash is below this are dropped: round(p * 2^32), capped to a u32. */
function dropThreshold(p: number): number {
  return Math.min(Math.round(p * 2 ** 32), 0xffffffff);
}

/** The keep mask (1 kept, 0 dropped) that `dropout` draws for `size` elements. */
export function dropoutMask(size: number, p: number, seed: number): Uint8Array {
  checkOptions({ p, training: true, seed });
  const threshold = dropThreshold(p);
  return Uint8Array.from(
    { length: size },
    (_, i) => p < 1 && dropoutHash(seed, i) >= threshold ? 1 : 0,
  );
}

function checkOptions(options: DropoutOptions): void {
  const { p, seed } = options;
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout: p must be in [0, 1], got ${p}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`dropout: seed must be an integer in [0, 2^32), got ${seed}`);
  }
}

/** Encodes out = x * keep(seed, i) / (1 - p); forward and backward both use it. */
function applyMask(x: Tensor, p: number, seed: number): Tensor {
  const out = Tensor.empty(x.shape);
  const size = x.size;
  const groups = Math.ceil(size / (WORKGROUP * PER_INVOCATION));
  const code = /* wgsl */ `
const SIZE: u32 = ${u32(size)};
const THRESHOLD: u32 = ${u32(dropThreshold(p))};
const SCALE: f32 = ${f32(1 / (1 - p))};
struct Params { seed: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

fn mix(value: u32) -> u32 {
  var h = value;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let key = mix(params.seed + ${u32(GOLDEN)});
  let base = ${workgroupIndex(groups)} * ${u32(WORKGROUP * PER_INVOCATION)} + lid;
  for (var k = 0u; k < ${u32(PER_INVOCATION)}; k++) {
    let i = base + k * ${u32(WORKGROUP)};
    if (i < SIZE) { out[i] = select(0.0, x[i] * SCALE, mix(mix(i) ^ key) >= THRESHOLD); }
  }
}`;
  const compiled = kernel({
    name: `dropout_${size}`,
    code,
    bindings: ["read", "read_write"],
    params: true,
  });
  dispatch(compiled, [x.buffer, out.buffer], grid(groups), params(new Uint32Array([seed])));
  return out;
}

/**
 * Inverted dropout: in training, zeroes each element with probability p and scales the kept
 * ones by 1 / (1 - p); the mask is `dropoutMask(x.size, p, seed)`. Returns a view of x when not
 * training or p == 0, and zeros when p == 1. Differentiable (the backward recomputes the mask).
 */
export function dropout(x: Tensor, options: DropoutOptions): Tensor {
  checkOptions(options);
  if (x.dtype !== "f32") throw new Error(`dropout: needs an f32 tensor, got ${x.dtype}`);
  const { p, training, seed } = options;
  if (!training || p === 0) return recordOp("dropout", x.view(), [x], (grad) => [grad.view()]);
  const shape = x.shape;
  if (p === 1) return recordOp("dropout", zeros(shape), [x], () => [zeros(shape)]);
  const out = applyMask(x, p, seed);
  return recordOp("dropout", out, [x], (grad) => [applyMask(grad, p, seed)]);
}
