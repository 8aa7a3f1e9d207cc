/**
 * Element-wise ops on same-shape tensors: add, sub, mul, scale, relu.
 *
 * One kernel generator serves them all: each invocation reads 4 elements of every input from a
 * texture and writes 4 with one vec4 store (see the cost table in docs/DESIGN.md).
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { f32, grid, kernel, u32, workgroupIndex } from "../kernel.ts";
import { dispatch } from "../stream.ts";
import { releaseTexture, tensorTexture, textureReaders } from "../texture.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { isNan4, relu4 } from "./nan_wgsl.ts";

const WORKGROUP = 64;

/**
 * Encodes `out = expression` element by element, 4 at a time: the expression reads the inputs
 * as `vec4<f32>` values `x0`, `x1`, ... (read through textures) and gives a `vec4<f32>`, stored
 * with one vec4 store. The last vec4 may run past `out.size` into the buffer's padding (pooled
 * buffers are whole 16-byte multiples), which nothing reads.
 */
function mapInto(
  name: string,
  out: Tensor,
  inputs: readonly Tensor[],
  expression: string,
): Tensor {
  const vectors = Math.ceil(out.size / 4);
  const groups = Math.ceil(vectors / WORKGROUP);
  const declarations = inputs.map((_, k) =>
    `@group(0) @binding(${k}) var in${k}: texture_2d<f32>;\n${textureReaders(`in${k}`)}`
  ).join("\n");
  const loads = inputs.map((_, k) => `let x${k} = in${k}Vec4(j);`).join(" ");
  const code = /* wgsl */ `
${declarations}
@group(0) @binding(${inputs.length}) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = ${workgroupIndex(groups)} * ${u32(WORKGROUP)} + lid;
  if (j < ${u32(vectors)}) { ${loads} out[j] = ${expression}; }
}`;
  const compiled = kernel({
    name: `${name}_${out.size}`,
    code,
    bindings: [...inputs.map(() => "texture" as const), "read_write"],
  });
  const textures = inputs.map((input) => tensorTexture(input));
  dispatch(compiled, [...textures, out.buffer], grid(groups));
  for (const texture of textures) releaseTexture(texture);
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

/** max(x, 0), NaN staying NaN (as PyTorch). */
export function relu(x: Tensor): Tensor {
  const out = map("relu", [x], relu4("x0"));
  return recordOp("relu", out, [x], (grad) => [reluBackward(grad, out)]);
}

/**
 * The gradient of relu given its output: 0 where output <= 0, else grad (NaN outputs pass it,
 * as PyTorch's `threshold_backward`).
 */
function reluBackward(grad: Tensor, output: Tensor): Tensor {
  return map(
    "relu_backward",
    [grad, output],
    `select(select(vec4<f32>(0.0), x0, x1 > vec4<f32>(0.0)), x0, ${isNan4("x1")})`,
  );
}
