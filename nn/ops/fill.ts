/**
 * Fills a buffer with one 32-bit value (zeros, ones, `full`).
 *
 * @module
 */

import { grid, kernel, u32, workgroupIndex } from "../kernel.ts";
import { dispatch, params } from "../stream.ts";

const WORKGROUP = 64;
const WORDS_PER_INVOCATION = 4;

function fillSource(words: number) {
  const groups = Math.ceil(words / (WORKGROUP * WORDS_PER_INVOCATION));
  return {
    name: `fill_${words}`,
    bindings: ["read_write"] as const,
    params: true,
    code: /* wgsl */ `
const WORDS: u32 = ${u32(words)};
struct Params { bits: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<uniform> params: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let base = ${workgroupIndex(groups)} * ${u32(WORKGROUP * WORDS_PER_INVOCATION)} + lid;
  for (var k = 0u; k < ${u32(WORDS_PER_INVOCATION)}; k++) {
    let i = base + k * ${u32(WORKGROUP)};
    if (i < WORDS) { out[i] = params.bits; }
  }
}`,
    groups,
  };
}

/** Sets the first `words` 32-bit words of `buffer` to `bits`. */
export function fillWords(buffer: GPUBuffer, words: number, bits: number): void {
  if (words === 0) return;
  const source = fillSource(words);
  dispatch(kernel(source), [buffer], grid(source.groups), params(new Uint32Array([bits >>> 0])));
}

/** The bit pattern of `value` as f32 or i32. */
export function valueBits(value: number, dtype: "f32" | "i32"): number {
  return dtype === "f32" ? new Uint32Array(new Float32Array([value]).buffer)[0] : value | 0;
}
