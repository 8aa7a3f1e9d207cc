/**
 * PyTorch equivalence of the tensor ops: every case runs in wgtorch and in PyTorch 1.13 (Debian's
 * `python3-torch`, float32, one thread) on the same inputs, and the outputs (shape, dtype, values)
 * and the input gradients for the same output gradient must agree.
 *
 * Tolerance: 1e-5 relative plus 1e-6 absolute (for values near zero, where a relative bound
 * means nothing in float32). A case that sums many terms states its looser tolerance and why:
 * float32 accumulation order differs between wgtorch's kernels and PyTorch's.
 *
 * @module
 */

import assert from "node:assert/strict";
import { askTorch, skipWithoutTorch } from "../torch.ts";
import { assertClose, gpuReady, randomArray, randomInts, type Tolerance } from "../testing.ts";
import { type Tensor, tensor } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import "../../nn/autograd.ts";
import { add, div, maximum, minimum, mul, pow, relu, sub } from "../../nn/ops/elementwise.ts";
import { eq, ge, gt, le, lt, ne, where } from "../../nn/ops/compare.ts";
import * as unary from "../../nn/ops/unary.ts";
import { linear, matmul } from "../../nn/ops/matmul.ts";
import { logSoftmax } from "../../nn/ops/softmax.ts";
import { mean, sum } from "../../nn/ops/reduce.ts";
import { cast } from "../../nn/ops/cast.ts";
import { gather, indexSelect, oneHot } from "../../nn/ops/indexing.ts";

/** One input of a case. */
interface Input {
  shape: readonly number[];
  dtype?: "f32" | "i32" | "u8";
  /** Range of the random values (default [-1, 1); for integers [low, high)). */
  low?: number;
  high?: number;
  /** Given values instead of random ones. */
  values?: readonly number[];
  /** Whether the gradient is compared (default: true for f32). */
  grad?: boolean;
}

/** One op, run by both. */
export interface TorchCase {
  name: string;
  inputs: readonly Input[];
  /** wgtorch's side. */
  op: (x: Tensor[]) => Tensor;
  /** PyTorch's side: an expression of x0, x1, ... (torch and F in scope). */
  torch: string;
  /** Looser than the default only with a reason in a comment. */
  tolerance?: Tolerance;
}

const DEFAULT_TOLERANCE: Tolerance = { rtol: 1e-5, atol: 1e-6 };

const u = unary;
const x23 = { shape: [2, 3] };
/** An f32 input of small integers 0..2 (ties for the comparisons), not differentiated. */
const smallInts = (shape: readonly number[], seed: number): Input => ({
  shape,
  values: Array.from(randomInts(shape.reduce((a, b) => a * b, 1), 3, seed)),
  grad: false,
});
const positive = (shape: readonly number[]) => ({ shape, low: 0.1, high: 3 });

/** The ops and their PyTorch spellings. */
const CASES: TorchCase[] = [
  // Broadcasting binary ops: a tensor with a tensor of another shape, and with a number.
  {
    name: "add [2,1,3]+[4,1]",
    inputs: [{ shape: [2, 1, 3] }, { shape: [4, 1] }],
    op: ([a, b]) => add(a, b),
    torch: "x0 + x1",
  },
  { name: "add 0-d", inputs: [{ shape: [] }, x23], op: ([a, b]) => add(a, b), torch: "x0 + x1" },
  { name: "add number", inputs: [x23], op: ([a]) => add(a, 2.5), torch: "x0 + 2.5" },
  {
    name: "sub [3]-[2,3]",
    inputs: [{ shape: [3] }, x23],
    op: ([a, b]) => sub(a, b),
    torch: "x0 - x1",
  },
  { name: "sub number-x", inputs: [x23], op: ([a]) => sub(1.5, a), torch: "1.5 - x0" },
  {
    name: "mul [5,1]*[1,7]",
    inputs: [{ shape: [5, 1] }, { shape: [1, 7] }],
    op: ([a, b]) => mul(a, b),
    torch: "x0 * x1",
  },
  {
    name: "div",
    inputs: [{ shape: [4, 5] }, { shape: [5], low: 0.5, high: 2 }],
    op: ([a, b]) => div(a, b),
    torch: "x0 / x1",
  },
  { name: "div number/x", inputs: [positive([6])], op: ([a]) => div(3, a), torch: "3 / x0" },
  {
    name: "pow x^y",
    inputs: [positive([3, 4]), { shape: [4] }],
    op: ([a, b]) => pow(a, b),
    torch: "torch.pow(x0, x1)",
  },
  { name: "pow x^3", inputs: [{ shape: [7] }], op: ([a]) => pow(a, 3), torch: "torch.pow(x0, 3)" },
  {
    name: "maximum",
    inputs: [{ shape: [3, 1] }, { shape: [4] }],
    op: ([a, b]) => maximum(a, b),
    torch: "torch.maximum(x0, x1)",
  },
  {
    name: "minimum",
    inputs: [x23, x23],
    op: ([a, b]) => minimum(a, b),
    torch: "torch.minimum(x0, x1)",
  },
  // Comparisons give masks (PyTorch's bool, wgtorch's u8); where selects with one.
  ...(["eq", "ne", "lt", "le", "gt", "ge"] as const).map((name): TorchCase => ({
    name,
    // Small integers as floats, so that ties occur.
    inputs: [smallInts([3, 4], 40), smallInts([4], 41)],
    op: ([a, b]) => ({ eq, ne, lt, le, gt, ge })[name](a, b),
    torch: `torch.${name}(x0, x1)`,
  })),
  {
    name: "where",
    inputs: [{ shape: [3, 1], dtype: "u8", values: [1, 0, 1], grad: false }, { shape: [3, 4] }, {
      shape: [4],
    }],
    op: ([c, a, b]) => where(c, a, b),
    torch: "torch.where(x0.bool(), x1, x2)",
  },
  // Unary ops.
  { name: "neg", inputs: [x23], op: ([x]) => u.neg(x), torch: "torch.neg(x0)" },
  { name: "abs", inputs: [x23], op: ([x]) => u.abs(x), torch: "torch.abs(x0)" },
  {
    name: "exp",
    inputs: [{ shape: [9], low: -3, high: 3 }],
    op: ([x]) => u.exp(x),
    torch: "torch.exp(x0)",
  },
  { name: "log", inputs: [positive([9])], op: ([x]) => u.log(x), torch: "torch.log(x0)" },
  { name: "sqrt", inputs: [positive([9])], op: ([x]) => u.sqrt(x), torch: "torch.sqrt(x0)" },
  { name: "rsqrt", inputs: [positive([9])], op: ([x]) => u.rsqrt(x), torch: "torch.rsqrt(x0)" },
  { name: "square", inputs: [x23], op: ([x]) => u.square(x), torch: "torch.square(x0)" },
  {
    name: "sin",
    inputs: [{ shape: [9], low: -4, high: 4 }],
    op: ([x]) => u.sin(x),
    torch: "torch.sin(x0)",
  },
  {
    name: "cos",
    inputs: [{ shape: [9], low: -4, high: 4 }],
    op: ([x]) => u.cos(x),
    torch: "torch.cos(x0)",
  },
  {
    name: "sigmoid",
    inputs: [{ shape: [9], low: -8, high: 8 }],
    op: ([x]) => u.sigmoid(x),
    torch: "torch.sigmoid(x0)",
  },
  {
    name: "tanh",
    inputs: [{ shape: [9], low: -4, high: 4 }],
    op: ([x]) => u.tanh(x),
    torch: "torch.tanh(x0)",
  },
  { name: "relu", inputs: [x23], op: ([x]) => relu(x), torch: "torch.relu(x0)" },
  {
    name: "leakyRelu",
    inputs: [x23],
    op: ([x]) => u.leakyRelu(x, { negativeSlope: 0.2 }),
    torch: "F.leaky_relu(x0, 0.2)",
  },
  {
    name: "elu",
    inputs: [{ shape: [9], low: -3, high: 3 }],
    op: ([x]) => u.elu(x, { alpha: 0.5 }),
    torch: "F.elu(x0, 0.5)",
  },
  {
    name: "gelu",
    inputs: [{ shape: [9], low: -4, high: 4 }],
    op: ([x]) => u.gelu(x),
    torch: "F.gelu(x0)",
  },
  {
    name: "gelu tanh",
    inputs: [{ shape: [9], low: -4, high: 4 }],
    op: ([x]) => u.gelu(x, { approximate: "tanh" }),
    torch: "F.gelu(x0, approximate='tanh')",
  },
  {
    name: "silu",
    inputs: [{ shape: [9], low: -4, high: 4 }],
    op: ([x]) => u.silu(x),
    torch: "F.silu(x0)",
  },
  {
    name: "softplus",
    inputs: [{ shape: [9], low: -4, high: 4 }],
    op: ([x]) => u.softplus(x, { beta: 2, threshold: 5 }),
    torch: "F.softplus(x0, beta=2, threshold=5)",
  },
  {
    name: "clamp",
    inputs: [x23],
    op: ([x]) => u.clamp(x, { min: -0.3, max: 0.4 }),
    torch: "torch.clamp(x0, -0.3, 0.4)",
  },
  // Matrix products (K terms summed: float32 accumulation order differs, hence 1e-5 absolute).
  {
    name: "matmul 2-D",
    inputs: [{ shape: [5, 7] }, { shape: [7, 3] }],
    op: ([a, b]) => matmul(a, b),
    torch: "x0 @ x1",
    tolerance: { rtol: 1e-5, atol: 1e-5 },
  },
  {
    name: "linear",
    inputs: [{ shape: [4, 6] }, { shape: [3, 6] }, { shape: [3] }],
    op: ([x, w, b]) => linear(x, w, b),
    torch: "F.linear(x0, x1, x2)",
    tolerance: { rtol: 1e-5, atol: 1e-5 },
  },
  {
    name: "matmul 1-D . 1-D",
    inputs: [{ shape: [7] }, { shape: [7] }],
    op: ([a, b]) => matmul(a, b),
    torch: "torch.matmul(x0, x1)",
    tolerance: { rtol: 1e-5, atol: 1e-5 },
  },
  {
    name: "matmul [2,3] . [3]",
    inputs: [{ shape: [2, 3] }, { shape: [3] }],
    op: ([a, b]) => matmul(a, b),
    torch: "torch.matmul(x0, x1)",
    tolerance: { rtol: 1e-5, atol: 1e-5 },
  },
  {
    name: "matmul batched, broadcast batch dims",
    inputs: [{ shape: [2, 1, 3, 4] }, { shape: [5, 4, 6] }],
    op: ([a, b]) => matmul(a, b),
    torch: "torch.matmul(x0, x1)",
    tolerance: { rtol: 1e-5, atol: 1e-5 },
  },
  {
    name: "matmul stack . matrix",
    inputs: [{ shape: [3, 5, 4] }, { shape: [4, 2] }],
    op: ([a, b]) => matmul(a, b),
    torch: "torch.matmul(x0, x1)",
    tolerance: { rtol: 1e-5, atol: 1e-5 },
  },
  {
    name: "linear on [2,3,6]",
    inputs: [{ shape: [2, 3, 6] }, { shape: [4, 6] }, { shape: [4] }],
    op: ([x, w, b]) => linear(x, w, b),
    torch: "F.linear(x0, x1, x2)",
    tolerance: { rtol: 1e-5, atol: 1e-5 },
  },
  // Reductions and softmax.
  {
    name: "sum all",
    inputs: [{ shape: [6, 5] }],
    op: ([x]) => sum(x),
    torch: "x0.sum()",
    tolerance: { rtol: 1e-5, atol: 1e-5 },
  },
  { name: "mean all", inputs: [{ shape: [6, 5] }], op: ([x]) => mean(x), torch: "x0.mean()" },
  {
    name: "logSoftmax",
    inputs: [{ shape: [4, 10], low: -3, high: 3 }],
    op: ([x]) => logSoftmax(x),
    torch: "F.log_softmax(x0, -1)",
  },
  // Indexing (repeated indices: their gradients add up) and casts.
  {
    name: "indexSelect dim 1",
    inputs: [{ shape: [3, 5] }, { shape: [4], dtype: "i32", values: [4, 0, 4, 2] }],
    op: ([x, i]) => indexSelect(x, 1, i),
    torch: "torch.index_select(x0, 1, x1.long())",
  },
  {
    name: "gather dim -1",
    inputs: [{ shape: [2, 4] }, { shape: [2, 3], dtype: "i32", values: [0, 3, 3, 1, 1, 2] }],
    op: ([x, i]) => gather(x, -1, i),
    torch: "torch.gather(x0, -1, x1.long())",
  },
  {
    name: "oneHot",
    inputs: [{ shape: [5], dtype: "i32", values: [0, 3, 1, 3, 2] }],
    op: ([i]) => oneHot(i, 4),
    torch: "F.one_hot(x0.long(), 4).int()",
  },
  {
    name: "cast f32 to i32 (toward zero)",
    inputs: [{ shape: [6], values: [-2.7, -0.5, 0, 0.5, 1.99, 300.2], grad: false }],
    op: ([x]) => cast(x, "i32"),
    torch: "x0.to(torch.int32)",
  },
  {
    name: "i32 + float number is f32",
    inputs: [{ shape: [4], dtype: "i32", values: [1, -2, 3, 7] }],
    op: ([x]) => add(x, 0.5),
    torch: "x0 + 0.5",
  },
  {
    name: "i32 * i32 stays i32",
    inputs: [{ shape: [2, 2], dtype: "i32", values: [1, -2, 3, 7] }, {
      shape: [2],
      dtype: "i32",
      values: [3, -4],
    }],
    op: ([a, b]) => mul(a, b),
    torch: "x0 * x1",
  },
  {
    name: "i32 / i32 is true division",
    inputs: [{ shape: [3], dtype: "i32", values: [7, -7, 1] }, {
      shape: [3],
      dtype: "i32",
      values: [2, 2, 3],
    }],
    op: ([a, b]) => div(a, b),
    torch: "x0 / x1",
  },
];

await gpuReady();

/** The inputs' values, seeded per case. */
function valuesOf(cases: readonly TorchCase[]): number[][][] {
  return cases.map((c, n) =>
    c.inputs.map((input, k) => {
      if (input.values) return [...input.values];
      const size = input.shape.reduce((a, b) => a * b, 1);
      if (input.dtype && input.dtype !== "f32") {
        const low = input.low ?? 0;
        return Array.from(randomInts(size, (input.high ?? 2) - low, 1000 + 10 * n + k), (v) =>
          v + low);
      }
      // Rounded to float32 first: both sides see exactly the same inputs.
      return Array.from(
        Float32Array.from(randomArray(size, 1000 + 10 * n + k, input.low ?? -1, input.high ?? 1)),
      );
    })
  );
}

interface TorchAnswer {
  values: number[];
  shape: number[];
  dtype: string;
  grads: (number[] | null)[];
}

Deno.test({
  name: `${CASES.length} ops give PyTorch's outputs and input gradients`,
  ignore: skipWithoutTorch("torch_ops_test"),
  fn: async () => {
    const values = valuesOf(CASES);
    const needsGrad = (input: Input) => (input.dtype ?? "f32") === "f32" && input.grad !== false;
    // The output gradient: seeded, sized by a first wgtorch forward.
    const outGrads = CASES.map((c, n) =>
      tidy(() => {
        const inputs = c.inputs.map((input, k) =>
          tensor(values[n][k], input.shape, { dtype: input.dtype ?? "f32" })
        );
        const size = c.op(inputs).size;
        return Array.from(Float32Array.from(randomArray(size, 5000 + n)));
      })
    );
    const answers = await askTorch<Record<string, TorchAnswer>>("ops.py", {
      cases: CASES.map((c, n) => ({
        name: c.name,
        expr: c.torch,
        out_grad: outGrads[n],
        inputs: c.inputs.map((input, k) => ({
          values: values[n][k],
          shape: input.shape,
          dtype: input.dtype ?? "f32",
          grad: needsGrad(input),
        })),
      })),
    });
    for (const [n, c] of CASES.entries()) {
      const theirs = answers[c.name];
      const tolerance = { ...(c.tolerance ?? DEFAULT_TOLERANCE), equalNan: true };
      const inputs = c.inputs.map((input, k) =>
        tensor(values[n][k], input.shape, {
          dtype: input.dtype ?? "f32",
          requiresGrad: needsGrad(input),
        })
      );
      try {
        const out = tidy(() => {
          const result = c.op(inputs);
          if (inputs.some((t) => t.requiresGrad)) {
            result.backward({ grad: tensor(outGrads[n], result.shape) });
          }
          return result;
        });
        assert.deepEqual([...out.shape], theirs.shape, `${c.name}: shape`);
        assert.equal(out.dtype, theirs.dtype, `${c.name}: dtype`);
        assertClose(await out.toArray(), theirs.values, tolerance, `${c.name}: values`);
        out.dispose();
        for (const [k, input] of inputs.entries()) {
          if (!input.requiresGrad) continue;
          assert.ok(input.grad, `${c.name}: input ${k} has no gradient`);
          assert.ok(theirs.grads[k], `${c.name}: PyTorch gave input ${k} no gradient`);
          assertClose(
            await input.grad.toArray(),
            theirs.grads[k]!,
            tolerance,
            `${c.name}: grad ${k}`,
          );
        }
      } finally {
        for (const input of inputs) {
          input.grad?.dispose();
          input.dispose();
        }
      }
    }
  },
});
