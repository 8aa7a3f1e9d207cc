/**
 * Reading one picture for `predict`: PNG (8-bit grey, grey+alpha, RGB, RGBA or palette;
 * non-interlaced) and PGM (P2/P5), converted to grey, composited over black, scaled to 28x28 by
 * box averaging, optionally inverted (FashionMNIST is a light object on a black background).
 *
 * @module
 */

import { crc32 } from "../data/png.ts";

/** A grey image, one byte per pixel. */
export interface GreyImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width * height` values, 0..255, row-major. */
  pixels: Uint8Array;
}

/** Side of the largest image accepted: far more than the 28x28 that `predict` needs. */
export const MAX_IMAGE_SIDE = 4096;

/** Throws when a `width` x `height` image is empty or larger than `MAX_IMAGE_SIDE` a side. */
function checkDimensions(name: string, width: number, height: number): void {
  if (width < 1 || height < 1 || width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw new Error(
      `${name}: the image is ${width}x${height} pixels: expected 1 to ${MAX_IMAGE_SIDE} a side ` +
        "(it is scaled to 28x28)",
    );
  }
}

/**
 * Inflates a zlib stream (the runtime checks its Adler-32), refusing more than `maxBytes` of
 * output without holding it.
 */
async function inflate(bytes: Uint8Array, maxBytes: number, name: string): Promise<Uint8Array> {
  const reader = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("deflate")).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (error) {
      throw new Error(
        `${name}: corrupt PNG image data (zlib: ${error instanceof Error ? error.message : error})`,
      );
    }
    if (chunk.done) break;
    total += chunk.value.length;
    if (total > maxBytes) {
      await reader.cancel();
      throw new Error(`${name}: corrupt PNG: its image data inflates past ${maxBytes} bytes`);
    }
    chunks.push(chunk.value);
  }
  const out = new Uint8Array(total);
  chunks.reduce((offset, chunk) => (out.set(chunk, offset), offset + chunk.length), 0);
  return out;
}

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Decodes a PNG into grey pixels (see the module notes for what is supported). */
export async function decodePng(bytes: Uint8Array, name = "image"): Promise<GreyImage> {
  if (bytes.length < 8 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) {
    throw new Error(`${name}: not a PNG file`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0, height = 0, depth = 0, colorType = 0, interlace = 0;
  let palette: Uint8Array | null = null;
  let transparency: Uint8Array | null = null;
  const data: Uint8Array[] = [];
  let ended = false;
  for (let at = 8; at < bytes.length;) {
    if (at + 12 > bytes.length) throw new Error(`${name}: truncated PNG (a chunk header is cut)`);
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (at + 12 + length > bytes.length) {
      throw new Error(`${name}: truncated PNG (chunk ${JSON.stringify(type)} is cut)`);
    }
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (crc32(bytes.subarray(at + 4, at + 8 + length)) !== view.getUint32(at + 8 + length)) {
      throw new Error(`${name}: corrupt PNG (CRC mismatch in chunk ${JSON.stringify(type)})`);
    }
    if (type === "IHDR") {
      if (length < 13) throw new Error(`${name}: corrupt PNG (IHDR of ${length} bytes)`);
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      checkDimensions(name, width, height);
      depth = body[8];
      colorType = body[9];
      interlace = body[12];
    } else if (type === "PLTE") palette = body;
    else if (type === "tRNS") transparency = body;
    else if (type === "IDAT") data.push(body);
    else if (type === "IEND") {
      ended = true;
      break;
    }
    at += 12 + length;
  }
  if (!ended) throw new Error(`${name}: truncated PNG (no IEND chunk)`);
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colorType];
  if (!width || !height || channels === undefined || depth !== 8 || interlace !== 0) {
    throw new Error(
      `${name}: unsupported PNG (${width}x${height}, bit depth ${depth}, colour type ` +
        `${colorType}${
          interlace ? ", interlaced" : ""
        }): use an 8-bit, non-interlaced PNG or a PGM`,
    );
  }
  const joined = new Uint8Array(data.reduce((n, d) => n + d.length, 0));
  data.reduce((offset, d) => (joined.set(d, offset), offset + d.length), 0);
  const stride = width * channels;
  const raw = await inflate(joined, height * (stride + 1), name);
  if (raw.length < height * (stride + 1)) throw new Error(`${name}: truncated PNG data`);
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[y * stride + x - channels] : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels] : 0;
      const predictor = [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter];
      if (predictor === undefined) throw new Error(`${name}: bad PNG filter ${filter}`);
      out[y * stride + x] = (line[x] + predictor) & 0xff;
    }
  }
  const pixels = new Uint8Array(width * height);
  for (let i = 0; i < width * height; i++) {
    let r: number, g: number, b: number, alpha = 255;
    const p = i * channels;
    if (colorType === 3) {
      const index = out[p];
      if (!palette || index * 3 + 2 >= palette.length) throw new Error(`${name}: bad palette`);
      [r, g, b] = [palette[index * 3], palette[index * 3 + 1], palette[index * 3 + 2]];
      if (transparency && index < transparency.length) alpha = transparency[index];
    } else if (channels <= 2) {
      r = g = b = out[p];
      if (channels === 2) alpha = out[p + 1];
    } else {
      [r, g, b] = [out[p], out[p + 1], out[p + 2]];
      if (channels === 4) alpha = out[p + 3];
    }
    pixels[i] = Math.round((0.299 * r + 0.587 * g + 0.114 * b) * alpha / 255);
  }
  return { width, height, pixels };
}

/** Decodes a binary (P5) or text (P2) PGM with maxval up to 255 (larger ones are scaled). */
function decodePgm(bytes: Uint8Array, name = "image"): GreyImage {
  const text = new TextDecoder("latin1").decode(bytes.subarray(0, Math.min(bytes.length, 512)));
  const header = /^(P[25])(?:\s+|#[^\n]*\n)*(\d+)(?:\s+|#[^\n]*\n)*(\d+)(?:\s+|#[^\n]*\n)*(\d+)\s/
    .exec(text);
  if (!header) throw new Error(`${name}: not a PNG or PGM file`);
  const [whole, magic, w, h, max] = header;
  const width = Number(w), height = Number(h), maxval = Number(max);
  checkDimensions(name, width, height);
  if (maxval < 1 || maxval > 65535) {
    throw new Error(`${name}: PGM maxval ${maxval}: expected 1 to 65535`);
  }
  const count = width * height;
  const pixels = new Uint8Array(count);
  const scaled = (value: number, i: number): number => {
    if (!(value <= maxval)) {
      throw new Error(`${name}: PGM pixel ${i} is ${value}: expected 0 to maxval ${maxval}`);
    }
    return Math.round(value * 255 / maxval);
  };
  if (magic === "P5") {
    if (maxval > 255) throw new Error(`${name}: 16-bit PGM is not supported`);
    const body = bytes.subarray(whole.length, whole.length + count);
    if (body.length < count) throw new Error(`${name}: truncated PGM`);
    for (let i = 0; i < count; i++) pixels[i] = scaled(body[i], i);
  } else {
    const values = new TextDecoder("latin1").decode(bytes).slice(whole.length).trim().split(/\s+/);
    if (values.length < count) throw new Error(`${name}: truncated PGM`);
    for (let i = 0; i < count; i++) {
      pixels[i] = scaled(/^\d+$/.test(values[i]) ? Number(values[i]) : NaN, i);
    }
  }
  return { width, height, pixels };
}

/** Resizes by averaging each output pixel's box of input pixels (nearest when enlarging). */
function resizeGrey(image: GreyImage, width: number, height: number): GreyImage {
  if (image.width === width && image.height === height) return image;
  const pixels = new Uint8Array(width * height);
  const sx = image.width / width, sy = image.height / height;
  for (let y = 0; y < height; y++) {
    const y0 = Math.floor(y * sy), y1 = Math.max(y0 + 1, Math.floor((y + 1) * sy));
    for (let x = 0; x < width; x++) {
      const x0 = Math.floor(x * sx), x1 = Math.max(x0 + 1, Math.floor((x + 1) * sx));
      let sum = 0;
      for (let yy = y0; yy < y1; yy++) {
        for (let xx = x0; xx < x1; xx++) sum += image.pixels[yy * image.width + xx];
      }
      pixels[y * width + x] = Math.round(sum / ((y1 - y0) * (x1 - x0)));
    }
  }
  return { width, height, pixels };
}

/** Reads a PNG or PGM file as a 28x28 grey image (inverted when asked). */
export async function readImage28(path: string, invert = false): Promise<GreyImage> {
  const bytes = await Deno.readFile(path);
  const image = bytes[0] === 0x89 ? await decodePng(bytes, path) : decodePgm(bytes, path);
  const small = resizeGrey(image, 28, 28);
  if (invert) {
    for (let i = 0; i < small.pixels.length; i++) small.pixels[i] = 255 - small.pixels[i];
  }
  return small;
}
