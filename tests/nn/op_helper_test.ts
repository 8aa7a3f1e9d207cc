import { u32 } from "../../nn/gpu/kernel.ts";
import { type KernelSpec, runKernel } from "../../nn/gpu/program.ts";
import { Tensor, tensor } from "../../nn/tensor.ts";
import { assert } from "../assert.ts";
import { gpuReady, randomArray } from "../testing.ts";
import { testOp } from "./op_helper.ts";

await gpuReady();

/** A broken copy: writes only the first half of its output. */
const HALF_COPY: KernelSpec<{ size: number }> = {
  name: "test_half_copy",
  key: ({ size }) => String(size),
  bindings: () => [
    { name: "x", role: "read" },
    { name: "out", role: "write" },
  ],
  plan: ({ size }) => ({ workgroupSize: 64, groups: Math.ceil(size / 64) }),
  body: ({ size }) => /* wgsl */ `
  let i = group * 64u + lid;
  if (i < ${u32(Math.floor(size / 2))}) { out[i] = x[i]; }`,
};

function halfCopy(x: Tensor): Tensor {
  const out = Tensor.empty(x.shape);
  runKernel(HALF_COPY, { size: x.size }, { x, out });
  return out;
}

Deno.test("testOp catches an output left partly unwritten, even when the pool holds the right values", async () => {
  const size = 1000;
  // The values testOp will make for its input (seed 1), left in pooled buffers of that size:
  // more than testOp's input, output gradient and the op's output take.
  const values = Float32Array.from(randomArray(size, 1));
  const leftovers = Array.from({ length: 4 }, () => tensor(values, [size]));
  for (const leftover of leftovers) leftover.dispose();
  let failure: unknown = null;
  try {
    await testOp({
      name: "half copy",
      inputs: [{ shape: [size], grad: false }],
      gpu: ([x]) => halfCopy(x),
      reference: ([x]) => x,
    });
  } catch (error) {
    failure = error;
  }
  assert.ok(failure instanceof Error, "testOp passed a kernel that wrote half its output");
  assert.match(failure.message, /half copy: forward: 500 of 1000 differ/);
});
