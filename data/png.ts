/**
 * A minimal PNG encoder: 8-bit grayscale or RGB, no filtering, compressed with
 * `CompressionStream("deflate")` (a zlib stream, as PNG's IDAT wants), with CRC-32 per chunk.
 *
 * @module
 */

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

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO-HDLC, as in PNG, gzip and zip) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
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
