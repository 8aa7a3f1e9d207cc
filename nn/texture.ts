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
 * Layout: element i of the tensor is component i % 4 of texel (i / 4) % 256 in row i / 1024.
 *
 * @module
 */

import { gpu } from "./device.ts";
import { bufferVersion, copyBufferToTexture } from "./stream.ts";
import type { Tensor } from "./tensor.ts";

/** Texels per texture row (each holds 4 floats). */
export const TEXELS_PER_ROW = 256;
const FLOATS_PER_ROW = TEXELS_PER_ROW * 4;
const BYTES_PER_ROW = FLOATS_PER_ROW * 4;

/** The texture mirroring a buffer, the version it holds and the elements copied. */
interface Mirror {
  texture: GPUTexture;
  version: number;
  size: number;
}

const mirrors = new WeakMap<GPUBuffer, Mirror>();
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

/** Rows a tensor of `size` floats needs. */
export function textureRows(size: number): number {
  return Math.max(1, Math.ceil(size / FLOATS_PER_ROW));
}

/**
 * The tensor's contents as an rgba32float texture: its buffer's mirror, refreshed by a copy
 * (encoded in the stream) when the buffer was written since the last one.
 */
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
        size: [TEXELS_PER_ROW, rows],
        format: "rgba32float",
        usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
      });
      textureBytes += rows * BYTES_PER_ROW;
    }
    mirrors.set(buffer, mirror = { texture, version: -1, size: 0 });
  }
  const version = bufferVersion(buffer);
  if (mirror.version !== version || mirror.size !== tensor.size) {
    const fullRows = Math.floor(tensor.size / FLOATS_PER_ROW);
    const rest = tensor.size - fullRows * FLOATS_PER_ROW;
    copyBufferToTexture(buffer, mirror.texture, {
      bytesPerRow: BYTES_PER_ROW,
      rows: fullRows,
      lastRowTexels: Math.ceil(rest / 4),
    });
    mirror.version = version;
    mirror.size = tensor.size;
  }
  return mirror.texture;
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
    textureBytes -= texture.height * BYTES_PER_ROW;
    texture.destroy();
  }
}

/**
 * Marks the end of a dispatch's use of a texture from `tensorTexture`. Mirrors stay with their
 * buffer, so this does nothing; kept so that kernels state where a texture's use ends.
 */
export function releaseTexture(_texture: GPUTexture): void {}

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
