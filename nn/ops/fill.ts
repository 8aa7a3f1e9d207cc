/**
 * Fills a buffer with one 32-bit value (zeros, ones, `full`).
 *
 * @module
 */

import { u32 } from "../gpu/kernel.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";

const WORDS_PER_INVOCATION = 4;

/** Writes `params.bits` into the first `words` words of `out`. */
const FILL: KernelSpec<{ words: number }> = {
  name: "fill",
  key: ({ words }) => String(words),
  bindings: () => [{ name: "out", role: "write", type: "u32" }],
  plan: ({ words }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(words / (policy.elementwiseWorkgroup * WORDS_PER_INVOCATION)),
  }),
  params: "bits: u32",
  body: ({ words }, { plan }) => /* wgsl */ `
  let base = group * ${u32(plan.workgroupSize * WORDS_PER_INVOCATION)} + lid;
  for (var k = 0u; k < ${u32(WORDS_PER_INVOCATION)}; k++) {
    let i = base + k * ${u32(plan.workgroupSize)};
    if (i < ${u32(words)}) { out[i] = params.bits; }
  }`,
};

/** Sets the first `words` 32-bit words of `buffer` to `bits`. */
export function fillWords(buffer: GPUBuffer, words: number, bits: number): void {
  if (words === 0) return;
  runKernel(FILL, { words }, { out: buffer }, { params: new Uint32Array([bits >>> 0]) });
}

/** The bit pattern of `value` as f32 or i32. */
export function valueBits(value: number, dtype: "f32" | "i32"): number {
  return dtype === "f32" ? new Uint32Array(new Float32Array([value]).buffer)[0] : value | 0;
}
