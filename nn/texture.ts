/**
 * Tensors read as textures. On llvmpipe a storage-buffer load runs lane by lane (~60 cycles per
 * float), while `textureLoad` of an rgba32float texel is vectorised (~6 cycles per float), and a
 * buffer-to-texture copy is a memcpy. So kernels that read a tensor many times take it as a
 * texture: `const texture = tensorTexture(x)`, bind it (access `"texture"`), and give it back
 * with `releaseTexture(texture)` right after the dispatch is encoded.
 *
 * Layout: element i of the tensor is component i % 4 of texel (i / 4) % 256 in row i / 1024.
 *
 * @module
 */

import { gpu } from "./device.ts";
import { copyBufferToTexture } from "./stream.ts";
import type { Tensor } from "./tensor.ts";

/** Texels per texture row (each holds 4 floats). */
export const TEXELS_PER_ROW = 256;
const FLOATS_PER_ROW = TEXELS_PER_ROW * 4;
const BYTES_PER_ROW = FLOATS_PER_ROW * 4;

const free = new Map<number, GPUTexture[]>();

/** Rows a tensor of `size` floats needs. */
export function textureRows(size: number): number {
  return Math.max(1, Math.ceil(size / FLOATS_PER_ROW));
}

/** Copies an f32 tensor into a pooled rgba32float texture (encoded in the stream) and returns it. */
export function tensorTexture(tensor: Tensor): GPUTexture {
  if (tensor.dtype !== "f32") {
    throw new Error(`tensorTexture: needs an f32 tensor, got ${tensor.dtype}`);
  }
  const rows = textureRows(tensor.size);
  const maxRows = gpu().limits.maxTextureDimension2D;
  if (rows > maxRows) {
    throw new Error(
      `tensorTexture: ${tensor.size} floats need ${rows} texture rows; the adapter allows ${maxRows}`,
    );
  }
  const texture = free.get(rows)?.pop() ?? gpu().device.createTexture({
    size: [TEXELS_PER_ROW, rows],
    format: "rgba32float",
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
  });
  const fullRows = Math.floor(tensor.size / FLOATS_PER_ROW);
  const rest = tensor.size - fullRows * FLOATS_PER_ROW;
  copyBufferToTexture(tensor.buffer, texture, {
    bytesPerRow: BYTES_PER_ROW,
    rows: fullRows,
    lastRowTexels: Math.ceil(rest / 4),
  });
  return texture;
}

/** Gives a texture from `tensorTexture` back to the pool (after the dispatch that reads it). */
export function releaseTexture(texture: GPUTexture): void {
  let list = free.get(texture.height);
  if (!list) free.set(texture.height, list = []);
  list.push(texture);
}

/**
 * WGSL functions reading the texture `name`: `<name>At(i)` gives element i, `<name>Vec4(j)`
 * gives elements 4j..4j+3.
 */
export function textureReaders(name: string): string {
  return /* wgsl */ `
fn ${name}At(i: u32) -> f32 {
  return textureLoad(${name}, vec2<u32>((i >> 2u) & ${TEXELS_PER_ROW - 1}u, i >> 10u), 0)[i & 3u];
}
fn ${name}Vec4(j: u32) -> vec4<f32> {
  return textureLoad(${name}, vec2<u32>(j & ${TEXELS_PER_ROW - 1}u, j >> 8u), 0);
}`;
}
