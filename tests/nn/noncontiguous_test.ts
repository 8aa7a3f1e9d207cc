// Ops fed "non-contiguous" inputs: the results of transpose (testOp's `transposed` inputs), as
// PyTorch's op tests do. wgtorch's transpose copies, so this checks that every op reads such a
// result correctly and that gradients flow back through the transpose to the leaf.
import { testOp } from "./op_helper.ts";
import { gpuReady } from "../testing.ts";
import { add, mul } from "../../nn/ops/elementwise.ts";
import { exp, tanh } from "../../nn/ops/unary.ts";
import { max, sum } from "../../nn/ops/reduce.ts";
import { matmul } from "../../nn/ops/matmul.ts";
import { logSoftmax } from "../../nn/ops/softmax.ts";
import { binaryReference } from "./reference/elementwise.ts";
import { reduceDimReference } from "./reference/reduce.ts";
import { batchedMatmulReference } from "./reference/matmul.ts";
import { softmaxDimReference } from "./reference/softmax.ts";

await gpuReady();

Deno.test("unary, binary (broadcasting), reductions, matmul and logSoftmax on transposed inputs", async () => {
  await testOp({
    name: "tanh of a transposed [3, 5]",
    inputs: [{ shape: [3, 5], transposed: true }],
    gpu: ([x]) => tanh(x),
    reference: ([x]) => x.map(Math.tanh),
  });
  await testOp({
    name: "exp of a transposed [2, 4, 6] (vec4 rows)",
    inputs: [{ shape: [2, 4, 6], transposed: true }],
    gpu: ([x]) => exp(x),
    reference: ([x]) => x.map(Math.exp),
  });
  await testOp({
    name: "transposed [4, 3] + [3]",
    inputs: [{ shape: [4, 3], transposed: true }, [3]],
    gpu: ([a, b]) => add(a, b),
    reference: ([a, b]) => binaryReference("add", a, [4, 3], b, [3]),
  });
  await testOp({
    name: "[2, 1, 5] * transposed [3, 5]",
    inputs: [[2, 1, 5], { shape: [3, 5], transposed: true }],
    gpu: ([a, b]) => mul(a, b),
    reference: ([a, b]) => binaryReference("mul", a, [2, 1, 5], b, [3, 5]),
  });
  await testOp({
    name: "sum over dim 1 of a transposed [3, 7]",
    inputs: [{ shape: [3, 7], transposed: true }],
    gpu: ([x]) => sum(x, { dim: 1 }),
    reference: ([x]) => reduceDimReference(x, [3, 7], 1, (v) => v.reduce((a, b) => a + b, 0)),
  });
  await testOp({
    name: "max over dim 0 of a transposed [5, 4]",
    inputs: [{ shape: [5, 4], transposed: true }],
    gpu: ([x]) => max(x, { dim: 0 }),
    reference: ([x]) => reduceDimReference(x, [5, 4], 0, (v) => Math.max(...v)),
  });
  await testOp({
    name: "transposed [3, 5] @ transposed [5, 2]",
    inputs: [{ shape: [3, 5], transposed: true }, { shape: [5, 2], transposed: true }],
    gpu: ([a, b]) => matmul(a, b),
    reference: ([a, b]) => batchedMatmulReference(a, [3, 5], b, [5, 2]),
  });
  await testOp({
    name: "logSoftmax over the last dim of a transposed [2, 6, 3]",
    inputs: [{ shape: [2, 6, 3], transposed: true, low: -3, high: 3 }],
    gpu: ([x]) => logSoftmax(x),
    reference: ([x]) => softmaxDimReference(x, [2, 6, 3], -1, true),
  });
});
