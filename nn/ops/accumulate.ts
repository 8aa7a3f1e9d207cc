/**
 * a + b for autograd's gradient accumulation. Its own kernel rather than the `add` op: ops import
 * autograd (to record themselves), so autograd cannot import them back.
 *
 * @module
 */

import { u32 } from "../gpu/kernel.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { Tensor } from "../tensor.ts";

/** out = a + b, four elements per invocation (the last vec4 may run into the padding). */
const ACCUMULATE: KernelSpec<{ size: number }> = {
  name: "accumulate",
  key: ({ size }) => String(size),
  bindings: () => [
    { name: "a", role: "input", readOnce: true },
    { name: "b", role: "input", readOnce: true },
    { name: "out", role: "write", type: "vec4<f32>" },
  ],
  plan: ({ size }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(Math.ceil(size / 4) / policy.elementwiseWorkgroup),
  }),
  body: ({ size }, { plan }) => /* wgsl */ `
  let j = group * ${u32(plan.workgroupSize)} + lid;
  if (j < ${u32(Math.ceil(size / 4))}) { out[j] = aVec4(j) + bVec4(j); }`,
};

/** The sum of two gradients of the same size, as a new tensor of `a`'s shape. */
export function addGradients(a: Tensor, b: Tensor): Tensor {
  if (a.size !== b.size) {
    throw new Error(`backward(): gradients of ${a.size} and ${b.size} elements cannot be summed`);
  }
  const out = Tensor.empty(a.shape);
  if (a.size > 0) runKernel(ACCUMULATE, { size: a.size }, { a, b, out });
  return out;
}
