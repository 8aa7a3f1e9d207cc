/**
 * Tensors read as textures. On llvmpipe a storage-buffer load runs lane by lane (~60 cycles per
 * float), while `textureLoad` of an rgba32float texel is vectorised (~6 cycles per float), and a
 * buffer-to-texture copy is a memcpy. So kernels take their inputs as textures:
 * `const texture = tensorTexture(x)`, bound with access `"texture"`.
 *
 * Each buffer keeps its texture, copied again only when the buffer was written since (see
 * `bufferVersion`): a weight read forward and backward, or an activation read by an op and by
 * its gradient, is copied once per step.
 *
 * Layout: element i of the tensor is component i % 4 of texel (i / 4) % W in row i / (4 W), where
 * W (`texelsPerRow()`) is 256 unless the adapter's largest storage binding would not fit in a
 * texture of maxTextureDimension2D rows: then the narrowest power of two whose texture holds it,
 * so that any tensor a buffer can hold can be read as a texture (llvmpipe: W = 512).
 *
 * @module
 */

import { gpu } from "./device.ts";
import { bufferVersion, copyBufferToTexture } from "./stream.ts";
import { formatShape } from "../shape.ts";
import type { Tensor } from "../tensor.ts";

/** The fewest texels per texture row (each holds 4 floats): small tensors take little memory. */
const MIN_TEXELS_PER_ROW = 256;

/** The limits that decide the texture layout. */
export type TextureLimits = Pick<
  GPUSupportedLimits,
  "maxTextureDimension2D" | "maxStorageBufferBindingSize"
>;

/**
 * Texels per texture row for an adapter with `limits`: the narrowest power of two from 256 on
 * whose texture (maxTextureDimension2D rows) holds the largest storage binding, at most
 * maxTextureDimension2D.
 */
export function texelsPerRowFor(limits: TextureLimits): number {
  const maxSide = limits.maxTextureDimension2D;
  const bindingFloats = limits.maxStorageBufferBindingSize / 4;
  let texels = MIN_TEXELS_PER_ROW;
  while (texels * 4 * maxSide < bindingFloats && texels * 2 <= maxSide) texels *= 2;
  return texels;
}

/** Texels per texture row on this process's device (see `texelsPerRowFor`). */
export function texelsPerRow(): number {
  return texelsPerRowFor(gpu().limits);
}

/** The most elements of a tensor that one texture of this device holds. */
export function maxElementsPerTexture(): number {
  return texelsPerRow() * 4 * gpu().limits.maxTextureDimension2D;
}

/**
 * Whether a tensor of `shape` can be read as a texture by the ops (every f32 op input is), i.e.
 * has at most `maxElementsPerTexture()` elements. Needs `init()`.
 */
export function textureFits(shape: readonly number[]): boolean {
  return shape.reduce((size, dim) => size * dim, 1) <= maxElementsPerTexture();
}

/** The texture mirroring a buffer, the version it holds and the elements copied. */
interface Mirror {
  texture: GPUTexture;
  version: number;
  size: number;
}

let mirrors = new WeakMap<GPUBuffer, Mirror>();
/**
 * Textures of mirrors whose buffer changed size, by row count, for other mirrors to reuse (not
 * destroyed: pending commands may still read them; reuse is ordered after those reads).
 */
const spare = new Map<number, GPUTexture[]>();
let textureBytes = 0;

/** Bytes held by texture mirrors of tensors (one per buffer read as a texture). */
export function textureMemory(): number {
  return textureBytes;
}

/** Rows a tensor of `size` floats needs in textures `texels` wide. */
export function textureRows(size: number, texels: number = texelsPerRow()): number {
  return Math.max(1, Math.ceil(size / (texels * 4)));
}

/**
 * The tensor's contents as an rgba32float texture: its buffer's mirror, refreshed by a copy
 * (encoded in the stream) when the buffer was written since the last one.
 */
export function tensorTexture(tensor: Tensor): GPUTexture {
  if (tensor.dtype !== "f32") {
    throw new Error(`tensorTexture: needs an f32 tensor, got ${tensor.dtype}`);
  }
  const texels = texelsPerRow();
  const floatsPerRow = texels * 4;
  const bytesPerRow = floatsPerRow * 4;
  const rows = textureRows(tensor.size, texels);
  const maxRows = gpu().limits.maxTextureDimension2D;
  if (rows > maxRows) {
    throw new Error(
      `A tensor of shape ${formatShape(tensor.shape)} (${tensor.size} elements) is too large ` +
        `to be read by an op: the largest that fits in one texture of this adapter has ` +
        `${maxElementsPerTexture()} elements (maxTextureDimension2D = ${maxRows}). Use a smaller ` +
        `batch.`,
    );
  }
  const buffer = tensor.buffer;
  let mirror = mirrors.get(buffer);
  if (mirror && mirror.texture.height !== rows) {
    let list = spare.get(mirror.texture.height);
    if (!list) spare.set(mirror.texture.height, list = []);
    list.push(mirror.texture);
    mirror = undefined;
  }
  if (!mirror) {
    let texture = spare.get(rows)?.pop();
    if (!texture) {
      texture = gpu().device.createTexture({
        size: [texels, rows],
        format: "rgba32float",
        usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
      });
      textureBytes += rows * bytesPerRow;
    }
    mirrors.set(buffer, mirror = { texture, version: -1, size: 0 });
  }
  const version = bufferVersion(buffer);
  if (mirror.version !== version || mirror.size !== tensor.size) {
    const fullRows = Math.floor(tensor.size / floatsPerRow);
    const rest = tensor.size - fullRows * floatsPerRow;
    copyBufferToTexture(buffer, mirror.texture, {
      bytesPerRow,
      rows: fullRows,
      lastRowTexels: Math.ceil(rest / 4),
    });
    mirror.version = version;
    mirror.size = tensor.size;
  }
  return mirror.texture;
}

/** Destroys the spare textures and forgets every mirror (their device is being destroyed). */
export function destroyTextures(): void {
  for (const list of spare.values()) for (const texture of list) texture.destroy();
  spare.clear();
  mirrors = new WeakMap();
  textureBytes = 0;
}

/**
 * Destroys the mirrors of `buffers` (which the pool is destroying) and the spare textures, so
 * that `trimPool()` gives their memory back too.
 */
export function destroyMirrors(buffers: Iterable<GPUBuffer>): void {
  const textures = [...spare.values()].flat();
  spare.clear();
  for (const buffer of buffers) {
    const mirror = mirrors.get(buffer);
    mirrors.delete(buffer);
    if (mirror) textures.push(mirror.texture);
  }
  for (const texture of textures) {
    textureBytes -= texture.height * texture.width * 16;
    texture.destroy();
  }
}

/**
 * WGSL functions reading the texture `name`: `<name>At(i)` gives element i, `<name>Vec4(j)`
 * gives elements 4j..4j+3.
 */
export function textureReaders(name: string): string {
  const texels = texelsPerRow();
  const shift = Math.log2(texels);
  return /* wgsl */ `
fn ${name}At(i: u32) -> f32 {
  return textureLoad(${name}, vec2<u32>((i >> 2u) & ${texels - 1}u, i >> ${shift + 2}u), 0)[i & 3u];
}
fn ${name}Vec4(j: u32) -> vec4<f32> {
  return textureLoad(${name}, vec2<u32>(j & ${texels - 1}u, j >> ${shift}u), 0);
}`;
}
