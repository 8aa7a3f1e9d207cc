/**
 * `maxout`: the maximum over groups of `pieces` consecutive entries of one dimension (features of
 * [N, F], channels of [N, C, H, W]), so that dimension shrinks from C to C / pieces (Goodfellow
 * et al., 2013). Equal to PyTorch's
 * `x.unflatten(dim, (C // pieces, pieces)).max(dim + 1).values`.
 *
 * One kernel for the forward: each invocation computes 4 outputs (one vec4 store), each the max of
 * `pieces` input reads, and, when a gradient will be needed, saves which piece won (as an f32)
 * for the backward. The backward kernel gives each input element the output gradient of its group
 * where it is the saved winner, else 0. The shape is baked in as constants.
 *
 * @module
 */

import { isGradEnabled, recordOp } from "../autograd.ts";
import { u32 } from "../gpu/kernel.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { isNan } from "./nan_wgsl.ts";
import { normalizeDim } from "./shape.ts";

/** Options of `maxout`. */
export interface MaxoutOptions {
  /** How many consecutive entries of `dim` each output is the maximum of (an integer >= 1). */
  pieces: number;
  /** The dimension split into groups (default 1: features of [N, F], channels of [N, C, H, W]). */
  dim?: number;
}

/** What the kernels bake in: x seen as [outer, groups * pieces, inner]. */
interface MaxoutGeometry {
  /** Product of the dimensions before `dim`. */
  outer: number;
  /** Output size along `dim` (input size / pieces). */
  groups: number;
  /** Entries per group. */
  pieces: number;
  /** Product of the dimensions after `dim`. */
  inner: number;
  /** Whether the forward saves the winning piece of each output (for the backward). */
  saveIndices: boolean;
}

function outputSize(g: MaxoutGeometry): number {
  return g.outer * g.groups * g.inner;
}

function inputSize(g: MaxoutGeometry): number {
  return outputSize(g) * g.pieces;
}

function key(g: MaxoutGeometry): string {
  return `${g.outer}x${g.groups}x${g.pieces}x${g.inner}`;
}

function constants(g: MaxoutGeometry): string {
  return /* wgsl */ `
const OUTPUTS: u32 = ${u32(outputSize(g))};
const INPUTS: u32 = ${u32(inputSize(g))};
const GROUPS: u32 = ${u32(g.groups)};
const PIECES: u32 = ${u32(g.pieces)};
const INNER: u32 = ${u32(g.inner)};`;
}

/**
 * Forward: invocation j owns outputs 4j..4j+3. Output o = (a, group, b) reads input
 * (a, group * PIECES + k, b) for k < PIECES. The first maximum wins ties; a NaN wins over
 * numbers, the first NaN over later ones (the output is NaN, as PyTorch's max).
 */
const MAXOUT: KernelSpec<MaxoutGeometry> = {
  name: "maxout",
  key: (g) => `${key(g)}${g.saveIndices ? "_indices" : ""}`,
  bindings: (g) => [
    { name: "x", role: "input" },
    { name: "out", role: "write", type: "vec4<f32>" },
    ...(g.saveIndices ? [{ name: "indices", role: "write" as const, type: "vec4<f32>" }] : []),
  ],
  plan: (g, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(Math.ceil(outputSize(g) / 4) / policy.elementwiseWorkgroup),
  }),
  prelude: constants,
  body: (g, { plan }) => /* wgsl */ `
  let j = group * ${u32(plan.workgroupSize)} + lid;
  if (j >= ${u32(Math.ceil(outputSize(g) / 4))}) { return; }
  var result = vec4<f32>(0.0);
  var winners = vec4<f32>(0.0);
  for (var e = 0u; e < 4u; e++) {
    let o = 4u * j + e;
    if (o >= OUTPUTS) { break; }
    let a = o / (GROUPS * INNER);
    let rest = o % (GROUPS * INNER);
    let base = a * GROUPS * PIECES * INNER + (rest / INNER) * PIECES * INNER + rest % INNER;
    var best = xAt(base);
    var winner = 0u;
    for (var k = 1u; k < PIECES; k++) {
      let value = xAt(base + k * INNER);
      if ((value > best || ${isNan("value")}) && !${isNan("best")}) {
        best = value;
        winner = k;
      }
    }
    result[e] = best;
    winners[e] = f32(winner);
  }
  out[j] = result;${g.saveIndices ? "\n  indices[j] = winners;" : ""}`,
};

/**
 * Backward: invocation j owns input elements 4j..4j+3; element (a, c, b) gets the gradient of
 * output (a, c / PIECES, b) when its piece c % PIECES won, else 0.
 */
const MAXOUT_BACKWARD: KernelSpec<MaxoutGeometry> = {
  name: "maxout_backward",
  key,
  bindings: () => [
    { name: "grad", role: "input" },
    { name: "indices", role: "input" },
    { name: "dx", role: "write", type: "vec4<f32>" },
  ],
  plan: (g, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(Math.ceil(inputSize(g) / 4) / policy.elementwiseWorkgroup),
  }),
  prelude: constants,
  body: (g, { plan }) => /* wgsl */ `
  let j = group * ${u32(plan.workgroupSize)} + lid;
  if (j >= ${u32(Math.ceil(inputSize(g) / 4))}) { return; }
  var result = vec4<f32>(0.0);
  for (var e = 0u; e < 4u; e++) {
    let i = 4u * j + e;
    if (i >= INPUTS) { break; }
    let a = i / (GROUPS * PIECES * INNER);
    let c = i / INNER % (GROUPS * PIECES);
    let o = (a * GROUPS + c / PIECES) * INNER + i % INNER;
    if (indicesAt(o) == f32(c % PIECES)) { result[e] = gradAt(o); }
  }
  dx[j] = result;`,
};

/**
 * Maxout: the maximum over each group of `pieces` consecutive entries along `dim` (default 1),
 * so that dimension's size C becomes C / pieces; C must be a multiple of `pieces`. Ties go to the
 * first maximum, which alone gets the gradient; a group holding NaN gives NaN. Differentiable.
 *
 * @example Four features, two pieces each: the max of features (0, 1) and of (2, 3)
 * ```ts
 * import { init, maxout, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const x = tensor([1, 5, -2, -3], [1, 4]);
 * console.log(await maxout(x, { pieces: 2 }).toArray()); // Float32Array [5, -2]
 * ```
 */
export function maxout(x: Tensor, options: MaxoutOptions): Tensor {
  const { pieces, dim = 1 } = options;
  if (x.dtype !== "f32") throw new Error(`maxout: needs an f32 tensor, got ${x.dtype}`);
  if (x.rank === 0) {
    throw new Error("maxout: needs a tensor with at least one dimension, got a 0-d tensor");
  }
  if (!Number.isInteger(pieces) || pieces < 1) {
    throw new Error(`maxout: pieces must be an integer >= 1, got ${pieces}`);
  }
  const d = normalizeDim("maxout", dim, x.rank, x.shape);
  const size = x.shape[d];
  if (size % pieces !== 0) {
    throw new Error(
      `maxout: dim ${dim} of x ${formatShape(x.shape)} has size ${size}, not a multiple of ` +
        `pieces ${pieces}`,
    );
  }
  const outShape = x.shape.map((n, i) => i === d ? n / pieces : n);
  const product = (dims: readonly number[]) => dims.reduce((p, n) => p * n, 1);
  const saveIndices = isGradEnabled() && x.requiresGrad;
  const g: MaxoutGeometry = {
    outer: product(x.shape.slice(0, d)),
    groups: size / pieces,
    pieces,
    inner: product(x.shape.slice(d + 1)),
    saveIndices,
  };
  const out = Tensor.empty(outShape);
  if (out.size === 0) {
    return recordOp("maxout", out, [x], () => [Tensor.empty(x.shape)]);
  }
  const indices = saveIndices ? Tensor.empty(outShape) : null;
  runKernel(MAXOUT, g, indices ? { x, out, indices } : { x, out });
  if (!indices) return out;
  return recordOp("maxout", out, [x], (grad) => {
    const dx = Tensor.empty(x.shape);
    runKernel(MAXOUT_BACKWARD, g, { grad, indices, dx });
    return [dx];
  }, [indices]);
}
