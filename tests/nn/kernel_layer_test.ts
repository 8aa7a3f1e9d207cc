// The kernel layer (nn/gpu/): a kernel declared once as a KernelSpec runs under both policies,
// reads its inputs the same through uniforms, textures and storage, compiles once per key, folds
// large grids, and passes per-call params without a new pipeline.
import { type KernelSpec, runKernel } from "../../nn/gpu/program.ts";
import { compiledKernelCount } from "../../nn/gpu/program.ts";
import { kernelPolicy, policyFor, setKernelPolicy } from "../../nn/gpu/policy.ts";
import { u32 } from "../../nn/gpu/kernel.ts";
import { streamStats } from "../../nn/gpu/stream.ts";
import { Tensor, tensor } from "../../nn/tensor.ts";
import { assert, assertThrows } from "../assert.ts";
import { gpuReady, randomArray } from "../testing.ts";

await gpuReady();

/** out = (a + params.shift) * b, element by element (no multiply-add a GPU could fuse): the shape of a newcomer's first op. */
const SHIFT_MULTIPLY: KernelSpec<{ size: number; readOnce: boolean; uniform?: boolean }> = {
  name: "test_shift_multiply",
  key: ({ size, readOnce, uniform }) =>
    `${size}${readOnce ? "_once" : ""}${uniform === false ? "_nouniform" : ""}`,
  bindings: ({ readOnce, uniform = true }) => [
    { name: "a", role: "input", readOnce, uniform },
    { name: "b", role: "input", readOnce, uniform },
    { name: "out", role: "write" },
  ],
  plan: ({ size }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(size / policy.elementwiseWorkgroup),
  }),
  params: "shift: f32",
  body: ({ size }, { plan }) => /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i < ${u32(size)}) { out[i] = (aAt(i) + params.shift) * bAt(i); }`,
};

async function shiftMultiply(
  a: Float32Array,
  b: Float32Array,
  shift: number,
  readOnce = false,
  uniform = true,
) {
  const ta = tensor(a, [a.length]), tb = tensor(b, [b.length]);
  const out = Tensor.empty([a.length]);
  runKernel(SHIFT_MULTIPLY, { size: a.length, readOnce, uniform }, { a: ta, b: tb, out }, {
    params: new Float32Array([shift]),
  });
  const result = await out.toArray() as Float32Array;
  for (const t of [ta, tb, out]) t.dispose();
  return result;
}

function expected(a: Float32Array, b: Float32Array, shift: number): Float32Array {
  return a.map((x, i) => Math.fround(Math.fround(x + shift) * b[i]));
}

for (const policy of ["software", "hardware"] as const) {
  Deno.test(`a spec runs under the ${policy} policy, inputs large and small`, async () => {
    setKernelPolicy(policy);
    try {
      assert.equal(kernelPolicy().name, policy);
      // 5 and 16,384 elements (uniform arrays on llvmpipe, else storage), 16,385 and 70,001 (a
      // texture under "software"), read once or not.
      for (const size of [5, 16_384, 16_385, 70_001]) {
        for (const readOnce of [false, true]) {
          const a = Float32Array.from(randomArray(size, 1));
          const b = Float32Array.from(randomArray(size, 2));
          assert.deepEqual(await shiftMultiply(a, b, 0.25, readOnce), expected(a, b, 0.25));
        }
      }
    } finally {
      setKernelPolicy(null);
    }
  });
}

Deno.test("inputs up to the policy's uniformInputBytes are read as uniforms, without a texture copy", async () => {
  const bytes = kernelPolicy().uniformInputBytes;
  if (bytes === 0) {
    console.log(`skipped: the ${kernelPolicy().name} policy here reads no input as a uniform`);
    return;
  }
  // Not opted in (`uniform: false`), a small input takes its texture copy as before.
  for (
    const [size, uniform, copies] of [[40, false, 2], [bytes / 4, true, 0], [
      bytes / 4 + 1,
      true,
      2,
    ]] as const
  ) {
    const a = Float32Array.from(randomArray(size, 7)), b = Float32Array.from(randomArray(size, 8));
    const before = streamStats().textureCopies;
    assert.deepEqual(await shiftMultiply(a, b, 0.5, false, uniform), expected(a, b, 0.5));
    assert.equal(
      streamStats().textureCopies - before,
      copies,
      `${size} elements, uniform ${uniform}`,
    );
  }
});

Deno.test("an input that the call also writes is never bound as a uniform", async () => {
  // A uniform (or read-only storage) and a writable storage binding of one buffer conflict in a
  // dispatch: in place, the layer reads the input through its texture mirror.
  if (!kernelPolicy().textureInputs) {
    console.log(`skipped: the ${kernelPolicy().name} policy reads inputs from storage`);
    return;
  }
  const values = Float32Array.from(randomArray(40, 9));
  const a = tensor(values, [40]), b = tensor(values.map((x) => x + 1), [40]);
  runKernel(SHIFT_MULTIPLY, { size: 40, readOnce: false }, { a, b, out: a }, {
    params: new Float32Array([0.5]),
  });
  const result = await a.toArray() as Float32Array;
  a.dispose();
  b.dispose();
  assert.deepEqual(result, expected(values, values.map((x) => x + 1), 0.5));
});

Deno.test("a spec compiles once per key; params change without a new kernel", async () => {
  const a = Float32Array.from(randomArray(37, 3)), b = Float32Array.from(randomArray(37, 4));
  await shiftMultiply(a, b, 1);
  const compiled = compiledKernelCount();
  for (const shift of [2, -3.5, 1e-3]) {
    assert.deepEqual(await shiftMultiply(a, b, shift), expected(a, b, shift));
  }
  assert.equal(compiledKernelCount(), compiled);
  await shiftMultiply(
    Float32Array.from(randomArray(38, 5)),
    Float32Array.from(randomArray(38, 6)),
    0,
  );
  assert.equal(compiledKernelCount(), compiled + 1, "a new size is a new key");
});

Deno.test("a grid past the per-dimension limit is folded into 2-D", async () => {
  // One invocation per workgroup: 70,001 workgroups exceed the 65,535 limit of one dimension.
  const ONE_LANE: KernelSpec<{ size: number }> = {
    name: "test_one_lane",
    key: ({ size }) => String(size),
    bindings: () => [{ name: "out", role: "write", type: "u32" }],
    plan: ({ size }) => ({ workgroupSize: 1, groups: size }),
    body: ({ size }) => `  if (group < ${u32(size)}) { out[group] = group; }`,
  };
  const size = 70_001;
  const out = Tensor.empty([size], "i32");
  runKernel(ONE_LANE, { size }, { out });
  const values = await out.toArray();
  out.dispose();
  assert.deepEqual(Array.from(values), Array.from({ length: size }, (_, i) => i));
});

Deno.test("runKernel names the spec and the binding when a resource or params is missing", () => {
  const out = Tensor.empty([4]);
  try {
    assertThrows(
      () => runKernel(SHIFT_MULTIPLY, { size: 4, readOnce: false }, { a: out, out }),
      /test_shift_multiply: input "b" needs a tensor/,
    );
    assertThrows(
      () => runKernel(SHIFT_MULTIPLY, { size: 4, readOnce: false }, { a: out, b: out, out }),
      /test_shift_multiply: needs params/,
    );
    assertThrows(() => setKernelPolicy("fast" as "software"), /"fast" is not a policy/);
  } finally {
    out.dispose();
  }
});

Deno.test("the software policy takes llvmpipe's tuning on llvmpipe only", () => {
  const llvmpipe = policyFor("software", "llvmpipe (LLVM 15.0.6, 256 bits)");
  const swiftShader = policyFor("software", "SwiftShader Device (Subzero)");
  assert.equal(llvmpipe.name, "software");
  assert.equal(llvmpipe.tuning, "llvmpipe");
  assert.equal(llvmpipe.inputGradRows, 16);
  assert.equal(llvmpipe.uniformInputBytes, 65_536);
  assert.equal(swiftShader.tuning, "");
  assert.equal(swiftShader.inputGradRows, 8);
  assert.equal(swiftShader.uniformInputBytes, 0);
  assert.equal(policyFor("hardware", "llvmpipe (LLVM 15.0.6, 256 bits)").tuning, "");
  // Everything else is the generic software policy's.
  assert.deepEqual({
    ...llvmpipe,
    tuning: "",
    inputGradRows: 8,
    inputGradAccumulators: 256,
    uniformInputBytes: 0,
  }, { ...swiftShader });
});
