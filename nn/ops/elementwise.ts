/**
 * Element-wise ops on same-shape tensors: add, sub, mul, scale, relu.
 *
 * One kernel generator serves them all: each invocation handles `PER_INVOCATION` elements,
 * strided by the workgroup size so that neighbouring lanes touch neighbouring words.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { f32, grid, kernel, u32, workgroupIndex } from "../kernel.ts";
import { dispatch } from "../stream.ts";
import { formatShape, Tensor } from "../tensor.ts";

const WORKGROUP = 64;
const PER_INVOCATION = 4;

/**
 * Encodes `out[i] = expression` for i < size, where the expression reads `a[i]`, `b[i]`, ... as
 * `x0`, `x1`, ... (f32).
 */
export function mapInto(
  name: string,
  out: Tensor,
  inputs: readonly Tensor[],
  expression: string,
): Tensor {
  const size = out.size;
  const groups = Math.ceil(size / (WORKGROUP * PER_INVOCATION));
  const declarations = inputs.map((_, k) =>
    `@group(0) @binding(${k}) var<storage, read> in${k}: array<f32>;`
  ).join("\n");
  const loads = inputs.map((_, k) => `let x${k} = in${k}[i];`).join(" ");
  const code = /* wgsl */ `
const SIZE: u32 = ${u32(size)};
${declarations}
@group(0) @binding(${inputs.length}) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let base = ${workgroupIndex(groups)} * ${u32(WORKGROUP * PER_INVOCATION)} + lid;
  for (var k = 0u; k < ${u32(PER_INVOCATION)}; k++) {
    let i = base + k * ${u32(WORKGROUP)};
    if (i < SIZE) { ${loads} out[i] = ${expression}; }
  }
}`;
  const compiled = kernel({
    name: `${name}_${size}`,
    code,
    bindings: [...inputs.map(() => "read" as const), "read_write"],
  });
  dispatch(compiled, [...inputs.map((input) => input.buffer), out.buffer], grid(groups));
  return out;
}

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

function map(name: string, inputs: readonly Tensor[], expression: string): Tensor {
  return mapInto(name, Tensor.empty(inputs[0].shape), inputs, expression);
}

/** a + b (same shapes). */
export function add(a: Tensor, b: Tensor): Tensor {
  checkSameShape("add", a, b);
  const out = map("add", [a, b], "x0 + x1");
  return recordOp("add", out, [a, b], (grad) => [grad.view(), grad.view()]);
}

/** a - b (same shapes). */
export function sub(a: Tensor, b: Tensor): Tensor {
  checkSameShape("sub", a, b);
  const out = map("sub", [a, b], "x0 - x1");
  return recordOp("sub", out, [a, b], (grad) => [grad.view(), scale(grad, -1)]);
}

/** a * b, element by element (same shapes). */
export function mul(a: Tensor, b: Tensor): Tensor {
  checkSameShape("mul", a, b);
  const out = map("mul", [a, b], "x0 * x1");
  return recordOp("mul", out, [a, b], (grad) => [
    a.requiresGrad ? mul(grad, b) : null,
    b.requiresGrad ? mul(grad, a) : null,
  ]);
}

/** x * factor. */
export function scale(x: Tensor, factor: number): Tensor {
  const out = map("scale", [x], `x0 * ${f32(factor)}`);
  return recordOp("scale", out, [x], (grad) => [scale(grad, factor)]);
}

/** max(x, 0). */
export function relu(x: Tensor): Tensor {
  const out = map("relu", [x], "max(x0, 0.0)");
  return recordOp("relu", out, [x], (grad) => [reluBackward(grad, out)]);
}

/** The gradient of relu given its output: grad where output > 0, else 0. */
export function reluBackward(grad: Tensor, output: Tensor): Tensor {
  return map("relu_backward", [grad, output], "select(0.0, x0, x1 > 0.0)");
}
