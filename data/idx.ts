/**
 * The IDX format of MNIST-style datasets, gzipped: decompression with `DecompressionStream`,
 * parsing with every header field checked, and encoding (for fixtures and exports).
 *
 * An IDX file is a big-endian header — two zero bytes, a type byte (0x08: unsigned bytes), the
 * number of dimensions, then each dimension as a u32 — followed by the elements, row-major.
 *
 * @module
 */

import { DataError, firstLine } from "./errors.ts";

/** An IDX array of unsigned bytes. */
export interface IdxArray {
  /** Dimensions, outermost first (the first is the number of examples). */
  dims: number[];
  /** The elements (a view into the decompressed file). */
  data: Uint8Array;
}

/** Images of an IDX3 file (magic 0x00000803). */
export interface IdxImages {
  /** Number of images. */
  count: number;
  /** Rows of each image. */
  rows: number;
  /** Columns of each image. */
  cols: number;
  /** `count * rows * cols` pixels, 0..255, row-major. */
  pixels: Uint8Array;
}

/** Labels of an IDX1 file (magic 0x00000801). */
export interface IdxLabels {
  /** Number of labels. */
  count: number;
  /** One class index per example. */
  labels: Uint8Array;
}

/** What the caller knows in advance; every given field is checked. */
export interface IdxExpectation {
  /** Number of examples. */
  count?: number;
  /** Image rows (images only). */
  rows?: number;
  /** Image columns (images only). */
  cols?: number;
  /** Number of classes: every label must be below it (labels only). */
  classes?: number;
}

const UBYTE = 0x08;
const MAGIC_IMAGES = 0x00000803;
const MAGIC_LABELS = 0x00000801;
const REFETCH = "Delete the file so that it is fetched again.";

function hex(value: number): string {
  return "0x" + value.toString(16).padStart(8, "0");
}

/**
 * Decompresses gzip `bytes` (from the file `name`, for messages). A file that is not gzip,
 * corrupt or truncated is a one-line `DataError` naming it.
 */
export async function gunzip(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  if (bytes.length < 18 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
    const start = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0"));
    const html = /^\s*</.test(new TextDecoder().decode(bytes.subarray(0, 64)));
    throw new DataError(
      `${name}: not a gzip file (${bytes.length} bytes, starting with ${
        start.join(" ") || "nothing"
      }` +
        `${html ? ", which looks like an HTML page" : ""}). ${REFETCH}`,
      name,
    );
  }
  // The trailer's ISIZE is the uncompressed size mod 2^32: preallocate when it is plausible.
  const trailer = new DataView(bytes.buffer, bytes.byteOffset + bytes.length - 4, 4);
  const sizeHint = trailer.getUint32(0, true);
  let out = new Uint8Array(sizeHint <= 1 << 30 ? sizeHint : 1 << 20);
  let length = 0;
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
      .pipeThrough(new DecompressionStream("gzip"));
    for await (const chunk of stream) {
      if (length + chunk.length > out.length) {
        const grown = new Uint8Array(Math.max(out.length * 2, length + chunk.length));
        grown.set(out.subarray(0, length));
        out = grown;
      }
      out.set(chunk, length);
      length += chunk.length;
    }
  } catch (error) {
    const detail = firstLine(error);
    const problem = /failed to write whole buffer/.test(detail)
      ? "unexpected bytes after the end of the gzip data"
      : `corrupt or truncated gzip data (${detail})`;
    throw new DataError(
      `${name}: ${problem}, after ${length} decompressed bytes. ${REFETCH}`,
      name,
      { cause: error },
    );
  }
  return length === out.length ? out : out.subarray(0, length);
}

/** Reads and decompresses the gzip file at `path`; errors name the path. */
export async function readGzipFile(path: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw new DataError(`${path}: cannot be read: ${firstLine(error)}`, path, { cause: error });
  }
  return await gunzip(bytes, path);
}

/**
 * Parses an IDX array of unsigned bytes, checking the magic number, the dimensions and that
 * the length is exactly header + product of dimensions. `name` names the file in errors.
 */
export function parseIdx(bytes: Uint8Array, name: string): IdxArray {
  if (bytes.length < 4) {
    throw new DataError(
      `${name}: truncated IDX file: ${bytes.length} bytes, too short for a header. ${REFETCH}`,
      name,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const rank = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== UBYTE || rank === 0) {
    throw new DataError(
      `${name}: wrong magic number ${hex(magic)}: not an IDX file of unsigned bytes ` +
        `(expected 0x000008NN, NN = number of dimensions). ${REFETCH}`,
      name,
    );
  }
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    throw new DataError(
      `${name}: truncated IDX file: ${bytes.length} bytes, the header alone needs ` +
        `${headerBytes}. ${REFETCH}`,
      name,
    );
  }
  const dims: number[] = [];
  let size = 1;
  for (let d = 0; d < rank; d++) {
    dims.push(view.getUint32(4 + 4 * d, false));
    size *= dims[d];
  }
  const expected = headerBytes + size;
  if (bytes.length !== expected) {
    const problem = bytes.length < expected
      ? `truncated IDX file: ${bytes.length} bytes, the header (${dims.join("x")}) announces ` +
        `${expected}`
      : `${bytes.length - expected} unexpected bytes after the ${dims.join("x")} elements the ` +
        `header announces`;
    throw new DataError(`${name}: ${problem}. ${REFETCH}`, name);
  }
  return { dims, data: bytes.subarray(headerBytes) };
}

function checkMagic(bytes: Uint8Array, name: string, magic: number, what: string): void {
  const actual = bytes.length >= 4
    ? new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, false)
    : -1;
  if (actual !== magic) {
    throw new DataError(
      `${name}: wrong magic number ${actual < 0 ? "(file too short)" : hex(actual)}, expected ` +
        `${hex(magic)} for an IDX file of ${what}: this is not the right file. ${REFETCH}`,
      name,
    );
  }
}

function checkCount(name: string, what: string, count: number, expected?: number): void {
  if (expected !== undefined && count !== expected) {
    throw new DataError(
      `${name}: holds ${count} ${what}, expected ${expected}: wrong or incomplete file. ${REFETCH}`,
      name,
    );
  }
}

/** Parses an IDX3 file of images (magic 0x00000803), checking what `expect` gives. */
export function parseImages(
  bytes: Uint8Array,
  name: string,
  expect: IdxExpectation = {},
): IdxImages {
  checkMagic(bytes, name, MAGIC_IMAGES, "images (N x rows x cols)");
  const { dims, data } = parseIdx(bytes, name);
  const [count, rows, cols] = dims;
  checkCount(name, "images", count, expect.count);
  if (
    (expect.rows !== undefined && rows !== expect.rows) ||
    (expect.cols !== undefined && cols !== expect.cols)
  ) {
    throw new DataError(
      `${name}: images are ${rows}x${cols}, expected ${expect.rows}x${expect.cols}: wrong ` +
        `dataset. ${REFETCH}`,
      name,
    );
  }
  return { count, rows, cols, pixels: data };
}

/** Parses an IDX1 file of labels (magic 0x00000801), checking what `expect` gives. */
export function parseLabels(
  bytes: Uint8Array,
  name: string,
  expect: IdxExpectation = {},
): IdxLabels {
  checkMagic(bytes, name, MAGIC_LABELS, "labels (N)");
  const { dims, data } = parseIdx(bytes, name);
  checkCount(name, "labels", dims[0], expect.count);
  if (expect.classes !== undefined) {
    const bad = data.findIndex((label) => label >= expect.classes!);
    if (bad >= 0) {
      throw new DataError(
        `${name}: label ${data[bad]} at index ${bad} is not a class index below ` +
          `${expect.classes}. ${REFETCH}`,
        name,
      );
    }
  }
  return { count: dims[0], labels: data };
}

/** Encodes an IDX array of unsigned bytes (the inverse of `parseIdx`). */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const size = dims.reduce((product, dim) => product * dim, 1);
  if (data.length !== size || dims.length === 0 || dims.length > 255) {
    throw new Error(`encodeIdx: ${data.length} bytes given for dimensions ${dims.join("x")}`);
  }
  const out = new Uint8Array(4 + 4 * dims.length + size);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x0800 | dims.length, false);
  dims.forEach((dim, d) => view.setUint32(4 + 4 * d, dim, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** Compresses `bytes` with gzip (`CompressionStream`). */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
