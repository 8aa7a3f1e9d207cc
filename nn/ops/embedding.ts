/**
 * `embedding`: rows of a weight table picked by i32 indices, as PyTorch's `F.embedding`.
 *
 * The forward is one gather kernel (an output vec4 per invocation when the embedding dimension
 * is a multiple of 4). Indices are read on the GPU, so they are not checked (that would need a
 * readback): an index outside [0, numEmbeddings) gives a row of zeros and no gradient, as
 * `indexSelect` does.
 *
 * The gradient needs no atomics: each invocation owns a block of up to 16 units (vec4s when the
 * dimension is a multiple of 4, else floats) of one weight row, loops over all the indices and
 * adds the output-gradient rows that picked its row (repeated indices add up); the `paddingIdx`
 * row gets none. That is numEmbeddings · ⌈units / 16⌉ · (number of indices) index reads: fine for
 * the vocabularies and batches of small models (1,000 × 64 with 4,096 indices: 20-65 ms on
 * llvmpipe), slow for large ones.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { f32, u32 } from "../gpu/kernel.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor, zeros } from "../tensor.ts";

/** Options of `embedding`. */
export interface EmbeddingOptions {
  /**
   * A row (negative: counted from the end) that gets no gradient, as PyTorch's `padding_idx`;
   * its values are still returned by the forward.
   */
  paddingIdx?: number;
  /**
   * Rows that `index` picks whose `normType`-norm exceeds this are first scaled in place (in
   * `weight` itself, outside autograd) to norm `maxNorm`, as PyTorch's `max_norm`. As in
   * PyTorch, `weight` must not be saved by an earlier op of the same graph (clone it there).
   */
  maxNorm?: number;
  /** The p of the norm `maxNorm` bounds (default 2; `Infinity`: the largest magnitude). */
  normType?: number;
}

/** What the renorm kernel bakes in. */
interface RenormShape {
  count: number;
  rows: number;
  dim: number;
  maxNorm: number;
  normType: number;
}

/**
 * Scales each row of `weight` that some index picks to norm at most `MAX_NORM` (PyTorch's
 * `embedding_renorm_`): one invocation per row, which looks for its row among the indices, so a
 * row picked twice is still scaled once, by one invocation (no races).
 */
const EMBEDDING_RENORM: KernelSpec<RenormShape> = {
  name: "embedding_renorm",
  key: ({ count, rows, dim, maxNorm, normType }) =>
    `${count}_${rows}x${dim}_max${maxNorm}_p${normType}`,
  bindings: () => [
    { name: "index", role: "read", type: "i32" },
    { name: "weight", role: "write" },
  ],
  plan: ({ rows }, policy) => ({
    workgroupSize: policy.narrowWorkgroup,
    groups: Math.ceil(rows / policy.narrowWorkgroup),
  }),
  prelude: ({ count, rows, dim, maxNorm, normType }) => /* wgsl */ `
const COUNT: u32 = ${u32(count)};
const ROWS: u32 = ${u32(rows)};
const DIM: u32 = ${u32(dim)};
const MAX_NORM: f32 = ${f32(maxNorm)};
fn norm(base: u32) -> f32 {${
    normType === Infinity
      ? /* wgsl */ `
  var largest = 0.0;
  for (var k = 0u; k < DIM; k++) { largest = max(largest, abs(weight[base + k])); }
  return largest;`
      : /* wgsl */ `
  var total = 0.0;
  for (var k = 0u; k < DIM; k++) { total += ${
        normType === 2
          ? "weight[base + k] * weight[base + k]"
          : normType === 1
          ? "abs(weight[base + k])"
          : `pow(abs(weight[base + k]), ${f32(normType)})`
      }; }
  return ${
        normType === 2
          ? "sqrt(total)"
          : normType === 1
          ? "total"
          : `pow(total, ${f32(1 / normType)})`
      };`
  }
}`,
  body: (_, { plan }) => /* wgsl */ `
  let row = group * ${u32(plan.workgroupSize)} + lid;
  if (row >= ROWS) { return; }
  var picked = false;
  for (var t = 0u; t < COUNT; t++) {
    if (index[t] == i32(row)) { picked = true; break; }
  }
  if (!picked) { return; }
  let base = row * DIM;
  let rowNorm = norm(base);
  if (rowNorm > MAX_NORM) {
    let scale = MAX_NORM / (rowNorm + 1e-7);
    for (var k = 0u; k < DIM; k++) { weight[base + k] = weight[base + k] * scale; }
  }`,
};

function checkNorm(maxNorm: number | undefined, normType: number | undefined): void {
  if (maxNorm !== undefined && !(maxNorm >= 0 && Number.isFinite(maxNorm))) {
    throw new Error(`embedding: maxNorm must be a finite number >= 0, got ${maxNorm}`);
  }
  if (normType !== undefined && !(normType > 0)) {
    throw new Error(`embedding: normType must be > 0 (or Infinity), got ${normType}`);
  }
}

/** What the embedding kernels bake in. */
interface EmbeddingShape {
  /** Number of indices. */
  count: number;
  /** Rows of the weight. */
  rows: number;
  /** Embedding dimension. */
  dim: number;
  /** The padding row, or -1. */
  padding: number;
}

function widthOf(dim: number): number {
  return dim % 4 === 0 ? 4 : 1;
}

function prelude({ count, rows, dim }: EmbeddingShape, reader: string): string {
  const width = widthOf(dim);
  return /* wgsl */ `
const COUNT: u32 = ${u32(count)}; // indices
const ROWS: i32 = ${rows}; // rows of the weight
const UNITS: u32 = ${u32(dim / width)}; // units (vec4s or floats) per row
alias V = ${width === 4 ? "vec4<f32>" : "f32"};
fn ${reader}Unit(i: u32) -> V { return ${width === 4 ? `${reader}Vec4(i)` : `${reader}At(i)`}; }`;
}

/** out[t, :] = weight[index[t], :], zeros where the index is out of range. */
const EMBEDDING: KernelSpec<EmbeddingShape> = {
  name: "embedding",
  key: ({ count, rows, dim }) => `${count}_${rows}x${dim}`,
  bindings: ({ dim }) => [
    { name: "index", role: "read", type: "i32" },
    { name: "weight", role: "input" },
    { name: "out", role: "write", type: widthOf(dim) === 4 ? "vec4<f32>" : "f32" },
  ],
  plan: ({ count, dim }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(count * dim / widthOf(dim) / policy.elementwiseWorkgroup),
  }),
  prelude: (o) => prelude(o, "weight"),
  body: (_, { plan }) => /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i >= COUNT * UNITS) { return; }
  let at = index[i / UNITS];
  if (at >= 0 && at < ROWS) {
    out[i] = weightUnit(u32(at) * UNITS + i % UNITS);
  } else {
    out[i] = V(0.0);
  }`,
};

/** Units (floats or vec4s) of a weight row that one backward invocation owns, at most. */
const BACKWARD_BLOCK = 16;

/** Blocks of `BACKWARD_BLOCK` units per weight row. */
function blocksOf(dim: number): number {
  return Math.ceil(dim / widthOf(dim) / BACKWARD_BLOCK);
}

/**
 * dweight[v, :] = the sum of grad[t, :] over the t with index[t] == v; 0 for the padding row.
 * Each invocation owns a block of units of one row: it zeroes them, then loops over the indices
 * once, adding the gradient row of each index that picked its row (its own outputs only: no
 * races, no atomics). Index reads: rows × blocks × indices; gradient reads: indices × dim.
 */
const EMBEDDING_BACKWARD: KernelSpec<EmbeddingShape> = {
  name: "embedding_backward",
  key: ({ count, rows, dim, padding }) => `${count}_${rows}x${dim}_p${padding}`,
  bindings: ({ dim }) => [
    { name: "grad", role: "input" },
    { name: "index", role: "read", type: "i32" },
    { name: "dweight", role: "write", type: widthOf(dim) === 4 ? "vec4<f32>" : "f32" },
  ],
  plan: ({ rows, dim }, policy) => ({
    workgroupSize: policy.narrowWorkgroup,
    groups: Math.ceil(rows * blocksOf(dim) / policy.narrowWorkgroup),
  }),
  prelude: (o) =>
    `${prelude(o, "grad")}
const PADDING: i32 = ${o.padding}; // -1: none
const BLOCK: u32 = ${u32(BACKWARD_BLOCK)};
const BLOCKS: u32 = ${u32(blocksOf(o.dim))}; // blocks per row`,
  body: (_, { plan }) => /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i >= u32(ROWS) * BLOCKS) { return; }
  let row = i32(i / BLOCKS);
  let first = u32(row) * UNITS + (i % BLOCKS) * BLOCK;
  let end = min(first + BLOCK, u32(row + 1) * UNITS);
  for (var k = first; k < end; k++) { dweight[k] = V(0.0); }
  if (row == PADDING) { return; }
  let shift = first - u32(row) * UNITS;
  for (var t = 0u; t < COUNT; t++) {
    if (index[t] == row) {
      let source = t * UNITS + shift;
      for (var k = first; k < end; k++) { dweight[k] += gradUnit(source + k - first); }
    }
  }`,
};

/** `paddingIdx` as a row in [0, rows), or -1 when absent; throws when out of range. */
export function paddingRow(op: string, paddingIdx: number | undefined, rows: number): number {
  if (paddingIdx === undefined) return -1;
  if (!Number.isInteger(paddingIdx) || paddingIdx < -rows || paddingIdx >= rows) {
    throw new Error(
      `${op}: paddingIdx ${paddingIdx} is out of range for ${rows} embeddings ` +
        `(must be an integer in [${-rows}, ${rows - 1}])`,
    );
  }
  return paddingIdx < 0 ? paddingIdx + rows : paddingIdx;
}

/**
 * The rows of `weight` [numEmbeddings, dim] at the i32 `index` (any shape, 0-d included), as
 * PyTorch's `F.embedding`: the result has shape [...index.shape, dim]. Indices are not checked
 * on the GPU: one outside [0, numEmbeddings) gives a row of zeros (PyTorch raises instead).
 * Differentiable with respect to weight: repeated indices add their gradients, and the
 * `paddingIdx` row gets none. With `maxNorm`, the picked rows of `weight` are first scaled down in
 * place to that norm (PyTorch's `max_norm`; the gradient does not go through the scaling).
 *
 * @example
 * ```ts
 * import { embedding, init, tensor } from "@wgtorch/wgtorch";
 *
 * await init();
 * const weight = tensor([0, 0, 1, 1, 2, 2], [3, 2]);
 * const out = embedding(tensor([2, 0, 2], [3], { dtype: "i32" }), weight);
 * console.log(out.shape, await out.toArray()); // [3, 2] [2, 2, 0, 0, 2, 2]
 * ```
 */
export function embedding(
  index: Tensor,
  weight: Tensor,
  options: EmbeddingOptions = {},
): Tensor {
  if (index.dtype !== "i32") {
    throw new Error(
      `embedding: index must be an i32 tensor, got ${index.dtype} (cast(index, "i32") first)`,
    );
  }
  if (weight.rank !== 2 || weight.dtype !== "f32") {
    throw new Error(
      `embedding: weight must be an f32 tensor [numEmbeddings, dim], got ${weight.dtype} ` +
        `${formatShape(weight.shape)}`,
    );
  }
  const [rows, dim] = weight.shape;
  const shape: EmbeddingShape = {
    count: index.size,
    rows,
    dim,
    padding: paddingRow("embedding", options.paddingIdx, rows),
  };
  const { maxNorm, normType = 2 } = options;
  checkNorm(maxNorm, options.normType);
  if (maxNorm !== undefined && index.size > 0 && weight.size > 0) {
    runKernel(EMBEDDING_RENORM, { count: index.size, rows, dim, maxNorm, normType }, {
      index,
      weight,
    });
  }
  const out = Tensor.empty([...index.shape, dim]);
  if (out.size > 0) runKernel(EMBEDDING, shape, { index, weight, out });
  return recordOp("embedding", out, [weight, index], (grad) => {
    if (index.size === 0) return [zeros(weight.shape), null];
    const dweight = Tensor.empty(weight.shape);
    if (dweight.size > 0) runKernel(EMBEDDING_BACKWARD, shape, { grad, index, dweight });
    return [dweight, null];
  });
}
