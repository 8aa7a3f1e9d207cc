/**
 * The batch gather kernel: `x[b] = images[order[start + b]] / 255`, `y[b] = labels[...]`, in one
 * dispatch, reading the permutation from a GPU buffer and `start` from `params()`.
 *
 * @module
 */

import { grid, kernel, u32, workgroupIndex } from "../nn/kernel.ts";
import { dispatch, params } from "../nn/stream.ts";
import type { Tensor } from "../nn/tensor.ts";

const WORKGROUP = 64;

function source(dtype: "u8" | "f32", pixels: number, batch: number): string {
  const aligned = pixels % 4 === 0;
  const vectors = aligned ? pixels / 4 : pixels;
  const iterations = Math.ceil(vectors / WORKGROUP);
  const guard = vectors % WORKGROUP !== 0;
  let load: string;
  if (dtype === "u8" && aligned) {
    // One u32 word holds 4 pixels, little-endian: unpack4x8unorm gives them as vec4 / 255.
    load = "x[row * V + v] = unpack4x8unorm(images[src * V + v]);";
  } else if (dtype === "u8") {
    load = `let byte = src * V + v;
      let word = images[byte >> 2u];
      x[row * V + v] = f32((word >> ((byte & 3u) * 8u)) & 255u) * (1.0 / 255.0);`;
  } else {
    load = "x[row * V + v] = images[src * V + v];";
  }
  const element = aligned ? "vec4<f32>" : "f32";
  const imageType = dtype === "u8" ? "u32" : element;
  return /* wgsl */ `
const V: u32 = ${u32(vectors)};
struct Params { start: u32 }
@group(0) @binding(0) var<storage, read> images: array<${imageType}>;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read> order: array<i32>;
@group(0) @binding(3) var<storage, read_write> x: array<${element}>;
@group(0) @binding(4) var<storage, read_write> y: array<i32>;
@group(0) @binding(5) var<uniform> params: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = ${workgroupIndex(batch)};
  ${grid(batch)[1] > 1 ? `if (row >= ${u32(batch)}) { return; }` : ""}
  let src = u32(order[params.start + row]);
  if (lid == 0u) { y[row] = labels[src]; }
  for (var k = 0u; k < ${u32(iterations)}; k++) {
    let v = lid + k * ${u32(WORKGROUP)};
    ${guard ? "if (v < V) {" : "{"}
      ${load}
    }
  }
}`;
}

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
  const compiled = kernel({
    name: `gather_batch_${dtype}_${pixels}`,
    code: source(dtype, pixels, batch),
    bindings: ["read", "read", "read", "read_write", "read_write"],
    params: true,
  });
  dispatch(
    compiled,
    [data.images.buffer, data.labels.buffer, data.order.buffer, out.x.buffer, out.y.buffer],
    grid(batch),
    params(new Uint32Array([start])),
  );
}
