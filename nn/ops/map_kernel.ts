/**
 * The element-wise kernel factory shared by the element-wise and unary ops: `out = expression`,
 * 4 elements per invocation, inputs read as `vec4<f32>` values `x0`, `x1`, ... (through textures
 * under the software policy), one vec4 store (see the cost table in docs/DESIGN.md). The last
 * vec4 may run past the size into the buffer's padding (pooled buffers are whole 16-byte
 * multiples), which nothing reads.
 *
 * @module
 */

import { f32, u32 } from "../gpu/kernel.ts";
import type { KernelPolicy } from "../gpu/policy.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { Tensor } from "../tensor.ts";

/** Shape and baked constants of one map kernel. */
export interface MapOptions {
  /** Elements of the output (and of every input). */
  size: number;
  /** Constants baked into the code (part of the key), given to the expression as literals. */
  constants?: readonly number[];
}

/** Optional parts of a map kernel. */
export interface MapExtras {
  /** Fields of a per-call `params` uniform the expression reads (`params.<field>`). */
  params?: string;
  /** WGSL helpers placed before `main`, given the expression's code and the policy. */
  prelude?: (code: string, policy: KernelPolicy) => string;
}

/**
 * A kernel of `arity` inputs computing `out = expression(constants)`, where the constants arrive
 * as WGSL f32 literals.
 */
export function mapKernel(
  name: string,
  arity: number,
  expression: (constants: readonly string[]) => string,
  extras: MapExtras = {},
): KernelSpec<MapOptions> {
  const inputs = Array.from({ length: arity }, (_, k) => `in${k}`);
  const code = ({ constants = [] }: MapOptions) => expression(constants.map(f32));
  return {
    name,
    key: ({ size, constants = [] }) => [size, ...constants.map(f32)].join("_"),
    bindings: () => [
      ...inputs.map((input) => ({ name: input, role: "input" as const })),
      { name: "out", role: "write", type: "vec4<f32>" },
    ],
    plan: ({ size }, policy) => ({
      workgroupSize: policy.elementwiseWorkgroup,
      groups: Math.ceil(Math.ceil(size / 4) / policy.elementwiseWorkgroup),
    }),
    params: extras.params,
    prelude: extras.prelude &&
      ((options, { policy }) => extras.prelude!(code(options), policy)),
    body: (options, { plan }) => {
      const loads = inputs.map((input, k) => `let x${k} = ${input}Vec4(j);`).join(" ");
      return /* wgsl */ `
  let j = group * ${u32(plan.workgroupSize)} + lid;
  if (j < ${u32(Math.ceil(options.size / 4))}) { ${loads} out[j] = ${code(options)}; }`;
    },
  };
}

/** Runs a map kernel on `inputs` (all of one size) into a new tensor of the first one's shape. */
export function runMap(
  spec: KernelSpec<MapOptions>,
  inputs: readonly Tensor[],
  constants: readonly number[] = [],
  params?: Float32Array,
): Tensor {
  const out = Tensor.empty(inputs[0].shape);
  const resources = Object.fromEntries(inputs.map((input, k) => [`in${k}`, input]));
  runKernel(spec, { size: out.size, constants }, { ...resources, out }, params ? { params } : {});
  return out;
}
