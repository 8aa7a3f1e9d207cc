/**
 * For tests: the FashionMNIST batch gather as it was before `TensorDataset` (issue 14), kept to
 * check that `GpuDataset`'s batches did not change (bit for bit).
 *
 * The batch gather kernel: `x[b] = images[order[start + b]] / 255`, `y[b] = labels[...]`, in one
 * dispatch, reading the permutation from a GPU buffer and `start` from `params()`.
 *
 * @module
 */

import { u32 } from "../../nn/gpu/kernel.ts";
import { type KernelSpec, runKernel } from "../../nn/gpu/program.ts";
import type { Tensor } from "../../nn/tensor.ts";

/** Lanes per example: they copy its pixels in strides of this many. */
const WORKGROUP = 64;

/** What a gather kernel is specialised on. */
interface GatherOptions {
  dtype: "u8" | "f32";
  pixels: number;
  batch: number;
}

/** Whether a row of pixels is copied four at a time. */
function aligned(pixels: number): boolean {
  return pixels % 4 === 0;
}

/** WGSL copying (and for u8, scaling to [0, 1]) pixel vector `v` of example `src` to row `row`. */
function loadPixels(dtype: "u8" | "f32", pixels: number): string {
  if (dtype === "f32") return "x[row * V + v] = images[src * V + v];";
  if (aligned(pixels)) {
    // One u32 word holds 4 pixels, little-endian: unpack4x8unorm gives them as vec4 / 255.
    return "x[row * V + v] = unpack4x8unorm(images[src * V + v]);";
  }
  return `let byte = src * V + v;
      let word = images[byte >> 2u];
      x[row * V + v] = f32((word >> ((byte & 3u) * 8u)) & 255u) * (1.0 / 255.0);`;
}

/** One workgroup per example: its index is a uniform load from `order`. */
const GATHER_BATCH: KernelSpec<GatherOptions> = {
  name: "gather_batch",
  key: ({ dtype, pixels, batch }) => `${dtype}_${pixels}_${batch}`,
  bindings: ({ dtype, pixels }) => {
    const pixelType = aligned(pixels) ? "vec4<f32>" : "f32";
    return [
      { name: "images", role: "read", type: dtype === "u8" ? "u32" : pixelType },
      { name: "labels", role: "read", type: "i32" },
      { name: "order", role: "read", type: "i32" },
      { name: "x", role: "write", type: pixelType },
      { name: "y", role: "write", type: "i32" },
    ];
  },
  plan: ({ batch }) => ({ workgroupSize: WORKGROUP, groups: batch }),
  params: "start: u32",
  prelude: ({ pixels }) => `const V: u32 = ${u32(aligned(pixels) ? pixels / 4 : pixels)};`,
  body: ({ dtype, pixels, batch }) => {
    const vectors = aligned(pixels) ? pixels / 4 : pixels;
    const guard = vectors % WORKGROUP !== 0;
    return /* wgsl */ `
  let row = group;
  // Past the per-dimension limit the grid is folded, with a few workgroups to spare.
  if (row >= ${u32(batch)}) { return; }
  let src = u32(order[params.start + row]);
  if (lid == 0u) { y[row] = labels[src]; }
  for (var k = 0u; k < ${u32(Math.ceil(vectors / WORKGROUP))}; k++) {
    let v = lid + k * ${u32(WORKGROUP)};
    ${guard ? "if (v < V) {" : "{"}
      ${loadPixels(dtype, pixels)}
    }
  }`;
  },
};

/**
 * Encodes one dispatch that fills `x` ([B, ...], f32) and `y` ([B], i32) with the examples
 * `order[start .. start + B)` of `images` (u8 or f32, [N, pixels]) and `labels` (i32, [N]).
 * One workgroup per example; the example's index is a uniform load. Never reads back.
 */
export function gatherBatch(
  data: { images: Tensor; labels: Tensor; order: Tensor },
  out: { x: Tensor; y: Tensor },
  start: number,
): void {
  const batch = out.y.size;
  const pixels = out.x.size / Math.max(batch, 1);
  const dtype = data.images.dtype === "u8" ? "u8" : "f32";
  if (batch === 0) return;
  if (start + batch > data.order.size) {
    throw new RangeError(
      `gatherBatch: rows ${start}..${start + batch} exceed the order's ${data.order.size}`,
    );
  }
  runKernel(GATHER_BATCH, { dtype, pixels, batch }, { ...data, ...out }, {
    params: new Uint32Array([start]),
  });
}
