/**
 * Element-wise ops on same-shape tensors: add, sub, mul, scale, relu.
 *
 * One kernel factory serves them all: each invocation reads 4 elements of every input (through
 * textures under the software policy) and writes 4 with one vec4 store (see the cost table in
 * docs/DESIGN.md).
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { f32, u32 } from "../gpu/kernel.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { isNan4, relu4 } from "./nan_wgsl.ts";

/** Shape and options of one element-wise kernel. */
interface MapOptions {
  size: number;
  /** The factor of `scale`. */
  factor?: number;
}

/**
 * A kernel computing `out = expression` element by element, 4 at a time: the expression reads
 * the inputs as `vec4<f32>` values `x0`, `x1`, ... and gives a `vec4<f32>`, stored with one
 * vec4 store. The last vec4 may run past the size into the buffer's padding (pooled buffers are
 * whole 16-byte multiples), which nothing reads.
 */
function mapKernel(
  name: string,
  arity: number,
  expression: (options: MapOptions) => string,
): KernelSpec<MapOptions> {
  const inputs = Array.from({ length: arity }, (_, k) => `in${k}`);
  return {
    name,
    key: ({ size, factor }) => `${size}${factor === undefined ? "" : `_${f32(factor)}`}`,
    bindings: () => [
      ...inputs.map((input) => ({ name: input, role: "input" as const })),
      { name: "out", role: "write", type: "vec4<f32>" },
    ],
    plan: ({ size }, policy) => ({
      workgroupSize: policy.elementwiseWorkgroup,
      groups: Math.ceil(Math.ceil(size / 4) / policy.elementwiseWorkgroup),
    }),
    body: (options, { plan }) => {
      const loads = inputs.map((input, k) => `let x${k} = ${input}Vec4(j);`).join(" ");
      return /* wgsl */ `
  let j = group * ${u32(plan.workgroupSize)} + lid;
  if (j < ${u32(Math.ceil(options.size / 4))}) { ${loads} out[j] = ${expression(options)}; }`;
    },
  };
}

const ADD = mapKernel("add", 2, () => "x0 + x1");
const SUB = mapKernel("sub", 2, () => "x0 - x1");
const MUL = mapKernel("mul", 2, () => "x0 * x1");
const SCALE = mapKernel("scale", 1, ({ factor }) => `x0 * ${f32(factor!)}`);
const RELU = mapKernel("relu", 1, () => relu4("x0"));
/** 0 where the output x1 <= 0, else the gradient x0 (NaN outputs pass it). */
const RELU_BACKWARD = mapKernel(
  "relu_backward",
  2,
  () => `select(select(vec4<f32>(0.0), x0, x1 > vec4<f32>(0.0)), x0, ${isNan4("x1")})`,
);

function checkSameShape(op: string, a: Tensor, b: Tensor): void {
  if (
    a.size !== b.size || a.shape.length !== b.shape.length ||
    a.shape.some((d, i) => d !== b.shape[i])
  ) {
    throw new Error(
      `${op}: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} differ; ` +
        "element-wise ops need equal shapes",
    );
  }
  if (a.dtype !== "f32" || b.dtype !== "f32") {
    throw new Error(`${op}: needs f32 tensors, got ${a.dtype} and ${b.dtype}`);
  }
}

function map(spec: KernelSpec<MapOptions>, inputs: readonly Tensor[], factor?: number): Tensor {
  const out = Tensor.empty(inputs[0].shape);
  const resources = Object.fromEntries(inputs.map((input, k) => [`in${k}`, input]));
  runKernel(spec, { size: out.size, factor }, { ...resources, out });
  return out;
}

/** a + b (same shapes). */
export function add(a: Tensor, b: Tensor): Tensor {
  checkSameShape("add", a, b);
  const out = map(ADD, [a, b]);
  return recordOp("add", out, [a, b], (grad) => [grad.view(), grad.view()]);
}

/** a - b (same shapes). */
export function sub(a: Tensor, b: Tensor): Tensor {
  checkSameShape("sub", a, b);
  const out = map(SUB, [a, b]);
  return recordOp("sub", out, [a, b], (grad) => [grad.view(), scale(grad, -1)]);
}

/** a * b, element by element (same shapes). */
export function mul(a: Tensor, b: Tensor): Tensor {
  checkSameShape("mul", a, b);
  const out = map(MUL, [a, b]);
  return recordOp("mul", out, [a, b], (grad) => [
    a.requiresGrad ? mul(grad, b) : null,
    b.requiresGrad ? mul(grad, a) : null,
  ]);
}

/** x * factor. */
export function scale(x: Tensor, factor: number): Tensor {
  const out = map(SCALE, [x], factor);
  return recordOp("scale", out, [x], (grad) => [scale(grad, factor)]);
}

/** max(x, 0), NaN staying NaN (as PyTorch). */
export function relu(x: Tensor): Tensor {
  const out = map(RELU, [x]);
  return recordOp("relu", out, [x], (grad) => [reluBackward(grad, out)]);
}

/**
 * The gradient of relu given its output: 0 where output <= 0, else grad (NaN outputs pass it,
 * as PyTorch's `threshold_backward`).
 */
function reluBackward(grad: Tensor, output: Tensor): Tensor {
  return map(RELU_BACKWARD, [grad, output]);
}
