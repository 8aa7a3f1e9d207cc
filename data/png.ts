/**
 * A minimal PNG encoder: 8-bit grayscale or RGB, no filtering, compressed with
 * `CompressionStream("deflate")` (a zlib stream, as PNG's IDAT wants), with CRC-32 per chunk
 * (`node:zlib`'s `crc32`).
 *
 * @module
 */

import { crc32 } from "node:zlib";

/** Pixels to encode, row-major, `channels` bytes per pixel. */
export interface RasterImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** 1 (grayscale) or 3 (RGB). */
  channels: 1 | 3;
  /** `width * height * channels` bytes. */
  data: Uint8Array;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

async function deflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Encodes `image` as a PNG file. */
export async function encodePng(image: RasterImage): Promise<Uint8Array> {
  const { width, height, channels, data } = image;
  if (
    !(width > 0 && height > 0 && Number.isInteger(width) && Number.isInteger(height)) ||
    data.length !== width * height * channels
  ) {
    throw new Error(
      `encodePng: ${data.length} bytes for ${width}x${height} with ${channels} channel(s)`,
    );
  }
  const stride = width * channels;
  const filtered = new Uint8Array((stride + 1) * height); // filter byte 0 (none) per row
  for (let y = 0; y < height; y++) {
    filtered.set(data.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = 8; // bit depth
  header[9] = channels === 1 ? 0 : 2; // colour type: grayscale or RGB
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", await deflate(filtered)),
    chunk("IEND", new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
