/**
 * The batch gather kernel of `DataLoader`: `out[b] = source[order[start + b]]` for one dataset
 * tensor, in one dispatch, reading the epoch's permutation from a GPU buffer and `start` from
 * `params`. Rows are copied as they are (f32, i32, or u8 packed four to a word), or converted to
 * f32 and multiplied by a `scale` (u8 images to [0, 1] with `scale: 1 / 255`).
 *
 * Each invocation copies up to `PER_LANE` vectors (four elements when a row's length is a
 * multiple of 4, else one) of one row, so that the row's index is loaded once per few vectors;
 * the vectors of a row are interleaved across invocations (coalesced on real GPUs).
 *
 * The dataset tensor is bound as a storage array (role `read`), not as an `input`: a gather reads
 * each of its elements at most once per epoch, and a texture mirror of a whole dataset would
 * double its memory (and may not fit a texture).
 *
 * @module
 */

import { f32, u32 } from "../nn/gpu/kernel.ts";
import type { KernelPolicy } from "../nn/gpu/policy.ts";
import { type KernelSpec, runKernel } from "../nn/gpu/program.ts";
import type { ParamsSlot } from "../nn/gpu/stream.ts";
import type { DType, Tensor } from "../nn/tensor.ts";

/** Vectors each invocation copies, at most. */
const PER_LANE = 4;

/** `1 / 255` as the u8 images' scale: `unpack4x8unorm`'s exact conversion. */
const UNORM_SCALE = 1 / 255;

/** What a gather kernel is specialised on. */
interface GatherOptions {
  /** The dataset tensor's dtype. */
  source: DType;
  /** Elements per sample. */
  row: number;
  /** Samples in the batch. */
  batch: number;
  /** Multiply by this and give f32 (null: copy as is, same dtype). */
  scale: number | null;
}

/** Whether rows are copied four elements at a time. */
function aligned(row: number): boolean {
  return row % 4 === 0;
}

/** The WGSL element type of the output and source arrays (the source of u8 is `u32` words). */
function types(o: GatherOptions): { source: string; out: string } {
  const vec = aligned(o.row);
  const scalar = o.source === "i32" ? "i32" : "f32";
  if (o.source === "u8") {
    if (o.scale === null) return { source: "u32", out: "u32" };
    return { source: "u32", out: vec ? "vec4<f32>" : "f32" };
  }
  const source = vec ? `vec4<${scalar}>` : scalar;
  if (o.scale === null) return { source, out: source };
  return { source, out: vec ? "vec4<f32>" : "f32" };
}

/** WGSL of vector `v` of sample `src` (index `at = src * V + v`), converted and scaled. */
function load(o: GatherOptions): string {
  const vec = aligned(o.row);
  if (o.source === "u8") {
    if (o.scale === null) return "source[at]"; // whole words of a row: a plain copy
    if (vec) {
      if (o.scale === UNORM_SCALE) return "unpack4x8unorm(source[at])";
      return `vec4<f32>((vec4<u32>(source[at]) >> vec4<u32>(0u, 8u, 16u, 24u)) & ` +
        `vec4<u32>(255u)) * SCALE`;
    }
    return "f32((source[at >> 2u] >> ((at & 3u) * 8u)) & 255u) * SCALE";
  }
  if (o.scale === null) return "source[at]";
  return vec ? "vec4<f32>(source[at]) * SCALE" : "f32(source[at]) * SCALE";
}

/** Vectors per row: words for u8 copies (rows of a multiple of 4 bytes), else vec4s or scalars. */
function vectors(row: number): number {
  return aligned(row) ? row / 4 : row;
}

/** Rows copied vector by vector (every case but u8 rows of a length not a multiple of 4). */
function rowBody(o: GatherOptions, workgroup: number): string {
  const v = vectors(o.row);
  const perLane = Math.min(v, PER_LANE);
  const chunks = Math.ceil(v / perLane);
  const guard = chunks * perLane !== v;
  return /* wgsl */ `
  let item = group * ${u32(workgroup)} + lid;
  let row = item / CHUNKS;
  // The last workgroup, and a folded grid, have invocations to spare.
  if (row >= BATCH) { return; }
  let chunk = item % CHUNKS;
  let src = u32(order[params.start + row]);
  for (var k = 0u; k < ${u32(perLane)}; k++) {
    let v = chunk + k * CHUNKS;
    ${guard ? "if (v >= V) { break; }" : ""}
    let at = src * V + v;
    out[row * V + v] = ${load(o)};
  }`;
}

/** u8 rows of a length not a multiple of 4: each invocation packs one output word of 4 bytes. */
function byteBody(workgroup: number): string {
  return /* wgsl */ `
  let word = group * ${u32(workgroup)} + lid;
  if (word >= WORDS) { return; }
  var packed = 0u;
  for (var b = 0u; b < 4u; b++) {
    let e = word * 4u + b;
    if (e < BATCH * ROW) {
      let row = e / ROW;
      let at = u32(order[params.start + row]) * ROW + e % ROW;
      packed |= ((source[at >> 2u] >> ((at & 3u) * 8u)) & 255u) << (b * 8u);
    }
  }
  out[word] = packed;`;
}

/** Whether `o` takes the byte-packing kernel. */
function bytewise(o: GatherOptions): boolean {
  return o.source === "u8" && o.scale === null && !aligned(o.row);
}

/** Invocations of a dispatch. */
function lanes(o: GatherOptions): number {
  if (bytewise(o)) return Math.ceil(o.batch * o.row / 4);
  const v = vectors(o.row);
  return o.batch * Math.ceil(v / Math.min(v, PER_LANE));
}

const GATHER_ROWS: KernelSpec<GatherOptions> = {
  name: "gather_rows",
  key: ({ source, row, batch, scale }) => `${source}_${row}_${batch}_${scale}`,
  bindings: (o) => {
    const t = types(o);
    return [
      { name: "source", role: "read", type: t.source },
      { name: "order", role: "read", type: "i32" },
      { name: "out", role: "write", type: t.out },
    ];
  },
  plan: (o, policy: KernelPolicy) => {
    const workgroupSize = policy.elementwiseWorkgroup;
    return { workgroupSize, groups: Math.ceil(lanes(o) / workgroupSize) };
  },
  params: "start: u32",
  prelude: (o) => {
    const v = vectors(o.row);
    return [
      `const BATCH: u32 = ${u32(o.batch)};`,
      `const ROW: u32 = ${u32(o.row)};`,
      `const V: u32 = ${u32(v)};`,
      `const CHUNKS: u32 = ${u32(Math.ceil(v / Math.min(v, PER_LANE)))};`,
      `const WORDS: u32 = ${u32(Math.ceil(o.batch * o.row / 4))};`,
      o.scale === null ? "" : `const SCALE: f32 = ${f32(o.scale)};`,
    ].join("\n");
  },
  body: (o, context) => {
    const workgroup = context.plan.workgroupSize;
    return bytewise(o) ? byteBody(workgroup) : rowBody(o, workgroup);
  },
};

/**
 * Encodes one dispatch that fills `out` ([B, ...]) with the samples `order[start .. start + B)`
 * of `source` ([N, ...], f32, i32 or u8): copied as they are (`out` of `source`'s dtype), or,
 * with `scale`, converted to f32 and multiplied by it. `params` may be a slot shared by the
 * batch's other gathers (its first u32 is `start`). Never reads back.
 */
export function gatherRows(
  source: Tensor,
  order: Tensor,
  out: Tensor,
  start: number,
  options: { scale?: number | null; params?: ParamsSlot } = {},
): void {
  const scale = options.scale ?? null;
  const batch = out.shape[0] ?? 0;
  const row = source.shape.slice(1).reduce((a, b) => a * b, 1);
  const dtype = scale === null ? source.dtype : "f32";
  if (out.dtype !== dtype || out.size !== batch * row) {
    throw new Error(
      `gatherRows: out is ${out.dtype} of ${out.size} elements; ${batch} samples of ${row} ` +
        `elements of ${source.dtype}${scale === null ? "" : " scaled"} need ${dtype}`,
    );
  }
  if (batch === 0 || row === 0) return;
  if (start + batch > order.size) {
    throw new RangeError(
      `gatherRows: rows ${start}..${start + batch} exceed the order's ${order.size}`,
    );
  }
  runKernel(GATHER_ROWS, { source: source.dtype, row, batch, scale }, { source, order, out }, {
    params: options.params ?? new Uint32Array([start]),
  });
}
