/**
 * The safetensors file format (https://github.com/huggingface/safetensors), for weights and
 * checkpoints:
 *
 * - 8 bytes: `N`, the header's byte length, an unsigned little-endian 64-bit integer;
 * - `N` bytes: a UTF-8 JSON object mapping each tensor name to
 *   `{"dtype":"F32","shape":[...],"data_offsets":[begin,end]}` (offsets relative to the end of
 *   the header), plus an optional `"__metadata__"` map of strings to strings; padded with spaces
 *   so that the data starts on a multiple of 8 bytes;
 * - the tensors' bytes, little-endian, row-major, back to back in offset order.
 *
 * Writing follows the reference implementation byte for byte: tensors sorted by descending dtype
 * alignment and then by name (UTF-8 byte order), `__metadata__` first, compact JSON with the
 * fields in the order `dtype`, `shape`, `data_offsets`. wgtorch writes and reads F32 only.
 *
 * @module
 */

import { writeFileAtomic } from "../train/tune/fs_atomic.ts";
import { type Tensor, tensor } from "./tensor.ts";

/** A tensor's shape and float32 elements on the CPU (row-major). */
export interface SafetensorsTensor {
  /** Dimensions, outermost first. */
  shape: number[];
  /** The elements. */
  data: Float32Array;
}

/** What a safetensors file holds, decoded. */
export interface DecodedSafetensors {
  /** The tensors, in file (offset) order. */
  tensors: Record<string, SafetensorsTensor>;
  /** The `__metadata__` strings (empty when the file has none). */
  metadata: Record<string, string>;
}

/** A safetensors file loaded onto the GPU. */
export interface LoadedSafetensors {
  /** New GPU tensors, owned by the caller (dispose them, or load inside `tidy`). */
  tensors: Record<string, Tensor>;
  /** The `__metadata__` strings (empty when the file has none). */
  metadata: Record<string, string>;
}

/** The reference implementation refuses headers larger than this. */
const MAX_HEADER_BYTES = 100_000_000;
/** Bytes before the header: its length as a u64. */
const LENGTH_BYTES = 8;
/** The data starts on a multiple of this; the header is padded with spaces up to it. */
const ALIGNMENT = 8;
const SPACE = 0x20;
const METADATA_KEY = "__metadata__";
const F32_BYTES = 4;

/** Element sizes of every dtype the format defines (bits / 8, rounded up for sub-byte ones). */
const KNOWN_DTYPES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  F4: 1,
  F6_E2M3: 1,
  F6_E3M2: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
  C64: 8,
};

const utf8 = new TextEncoder();

/** Compares two strings by their UTF-8 bytes, as Rust's `String::cmp` does. */
function compareUtf8(a: string, b: string): number {
  const x = utf8.encode(a), y = utf8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

/**
 * Serialises float32 tensors (and optional string metadata) as a safetensors file, byte for byte
 * as the reference implementation writes it.
 */
export function encodeSafetensors(
  tensors: Record<string, { shape: readonly number[]; data: Float32Array }>,
  metadata?: Record<string, string>,
): Uint8Array {
  const names = Object.keys(tensors).sort(compareUtf8); // all F32: one alignment class
  const entries: string[] = [];
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort(compareUtf8);
    for (const key of keys) {
      if (typeof metadata[key] !== "string") {
        throw new Error(
          `encodeSafetensors: metadata "${key}" is a ${typeof metadata[key]}; safetensors ` +
            "metadata values must be strings (JSON.stringify structured values)",
        );
      }
    }
    const sorted = Object.fromEntries(keys.map((key) => [key, metadata[key]]));
    entries.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(sorted)}`);
  }
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) {
      throw new Error(`encodeSafetensors: "${METADATA_KEY}" is reserved and cannot name a tensor`);
    }
    const { shape, data } = tensors[name];
    if (!(data instanceof Float32Array)) {
      throw new Error(`encodeSafetensors: tensor "${name}" must hold a Float32Array`);
    }
    if (shape.some((dim) => !Number.isSafeInteger(dim) || dim < 0)) {
      throw new Error(
        `encodeSafetensors: tensor "${name}" has invalid shape ${formatShape(shape)}`,
      );
    }
    if (elementCount(shape) !== data.length) {
      throw new Error(
        `encodeSafetensors: tensor "${name}" has shape ${formatShape(shape)} ` +
          `(${elementCount(shape)} elements) but ${data.length} values`,
      );
    }
    const end = offset + data.byteLength;
    entries.push(
      `${JSON.stringify(name)}:{"dtype":"F32","shape":${JSON.stringify([...shape])},` +
        `"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = utf8.encode(`{${entries.join(",")}}`);
  const headerBytes = Math.ceil(json.length / ALIGNMENT) * ALIGNMENT;
  const out = new Uint8Array(LENGTH_BYTES + headerBytes + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes), true);
  out.set(json, LENGTH_BYTES);
  out.fill(SPACE, LENGTH_BYTES + json.length, LENGTH_BYTES + headerBytes);
  let at = LENGTH_BYTES + headerBytes;
  for (const name of names) {
    const { data } = tensors[name];
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

interface HeaderEntry {
  name: string;
  dtype: "F32" | "I64";
  shape: number[];
  begin: number;
  end: number;
}

function parseEntry(name: string, value: unknown, fail: (why: string) => never): HeaderEntry {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    fail(`the header entry of tensor "${name}" is not an object`);
  }
  const info = value as Record<string, unknown>;
  const { dtype, shape, data_offsets: offsets } = info;
  if (typeof dtype !== "string") fail(`tensor "${name}" has no dtype string`);
  if (!(dtype in KNOWN_DTYPES)) fail(`tensor "${name}" has an unknown dtype "${dtype}"`);
  if (dtype !== "F32" && dtype !== "I64") {
    fail(
      `tensor "${name}" has dtype ${dtype}; wgtorch reads only F32 tensors (and I64 ones such ` +
        "as PyTorch's num_batches_tracked); convert the weights to float32 before saving them",
    );
  }
  if (
    !Array.isArray(shape) || shape.some((dim) => !Number.isSafeInteger(dim) || dim < 0)
  ) {
    fail(`tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    offsets.some((x) => !Number.isSafeInteger(x) || x < 0)
  ) {
    fail(`tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  return { name, dtype, shape: shape as number[], begin: offsets[0], end: offsets[1] };
}

function parseMetadata(value: unknown, fail: (why: string) => never): Record<string, string> {
  if (value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    fail(`"${METADATA_KEY}" is not an object`);
  }
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== "string") fail(`metadata "${key}" is not a string`);
  }
  return Object.fromEntries(Object.entries(value)) as Record<string, string>;
}

/**
 * Parses a safetensors file. Checks the header length, the JSON, every dtype (F32, and I64 for
 * PyTorch's integer buffers such as `num_batches_tracked`, read as float32 numbers), that each tensor's byte range matches its shape, and that the ranges are
 * contiguous from 0 and end exactly at the end of the file.
 */
export function decodeSafetensors(bytes: Uint8Array): DecodedSafetensors {
  const fail = (why: string): never => {
    throw new Error(`Invalid safetensors data (${bytes.length} bytes): ${why}`);
  };
  if (bytes.length < LENGTH_BYTES) {
    fail(`a safetensors file starts with an ${LENGTH_BYTES}-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    fail(`the header length ${declared} is over the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const headerBytes = Number(declared);
  const dataStart = LENGTH_BYTES + headerBytes;
  if (dataStart > bytes.length) {
    fail(
      `the header length is ${headerBytes} bytes but only ${bytes.length - LENGTH_BYTES} ` +
        "follow (truncated file?)",
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      bytes.subarray(LENGTH_BYTES, dataStart),
    );
  } catch {
    return fail("the header is not valid UTF-8");
  }
  if (!text.startsWith("{")) fail("the header does not start with '{'");
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    return fail(`the header is not valid JSON (${(error as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail("the header is not a JSON object");
  }
  const fields = header as Record<string, unknown>;
  const metadata = parseMetadata(fields[METADATA_KEY], fail);
  const entries = Object.entries(fields)
    .filter(([name]) => name !== METADATA_KEY)
    .map(([name, value]) => parseEntry(name, value, fail))
    .sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectedBegin = 0;
  for (const entry of entries) {
    if (entry.begin !== expectedBegin || entry.end < entry.begin) {
      fail(
        `tensor "${entry.name}" has data_offsets [${entry.begin}, ${entry.end}]; the data must ` +
          `be contiguous and the next tensor should start at ${expectedBegin}`,
      );
    }
    const needed = elementCount(entry.shape) * (entry.dtype === "I64" ? 8 : F32_BYTES);
    if (entry.end - entry.begin !== needed) {
      fail(
        `tensor "${entry.name}" of shape ${formatShape(entry.shape)} needs ${needed} bytes ` +
          `but its data_offsets span ${entry.end - entry.begin}`,
      );
    }
    expectedBegin = entry.end;
  }
  if (dataStart + expectedBegin !== bytes.length) {
    fail(
      `the header describes ${expectedBegin} bytes of tensor data but ` +
        `${bytes.length - dataStart} follow it` +
        (dataStart + expectedBegin > bytes.length ? " (truncated file?)" : ""),
    );
  }
  const tensors = Object.fromEntries(entries.map((entry) => {
    const start = bytes.byteOffset + dataStart + entry.begin;
    const copy = bytes.buffer.slice(start, start + entry.end - entry.begin) as ArrayBuffer;
    // I64 values (step counters) become float32 numbers: exact up to 2^24.
    const data = entry.dtype === "I64"
      ? Float32Array.from(new BigInt64Array(copy), (value) => Number(value))
      : new Float32Array(copy);
    return [entry.name, { shape: entry.shape, data }];
  }));
  return { tensors, metadata };
}

/**
 * Throws one error that names every missing, unexpected and mis-shaped tensor when `got` (the
 * shapes in a file) does not match `expected` (the shapes a model needs); returns otherwise.
 * `what` starts the message, e.g. `"Cannot load checkpoint.safetensors into the model"`.
 */
export function checkStateDictShapes(
  expected: Record<string, readonly number[]>,
  got: Record<string, readonly number[]>,
  what: string,
): void {
  const has = (record: object, key: string) => Object.prototype.hasOwnProperty.call(record, key);
  const missing = Object.keys(expected).filter((name) => !has(got, name));
  const unexpected = Object.keys(got).filter((name) => !has(expected, name));
  const wrong = Object.keys(expected).filter((name) =>
    has(got, name) &&
    (got[name].length !== expected[name].length ||
      got[name].some((dim, i) => dim !== expected[name][i]))
  );
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`missing: ${missing.join(", ")}`);
  if (unexpected.length > 0) problems.push(`unexpected: ${unexpected.join(", ")}`);
  if (wrong.length > 0) {
    problems.push(
      "wrong shape: " +
        wrong.map((name) =>
          `${name} is ${formatShape(got[name])} in the file, the model needs ` +
          formatShape(expected[name])
        ).join("; "),
    );
  }
  if (problems.length > 0) throw new Error(`${what}: ${problems.join("; ")}`);
}

/**
 * Reads `stateDict`'s GPU tensors back (float32 only) and writes them to `path` as a
 * safetensors file, atomically (`writeFileAtomic`: a temporary file beside `path`, synced, then
 * renamed over it), so a crash never leaves a half-written `path`, and a failed write (a full
 * disk) leaves no temporary file and throws an error that names `path`.
 */
export async function saveSafetensors(
  path: string,
  stateDict: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const [name, item] of Object.entries(stateDict)) {
    if (item.dtype !== "f32") {
      throw new Error(
        `saveSafetensors: tensor "${name}" is ${item.dtype}; only f32 tensors can be saved`,
      );
    }
    Object.defineProperty(tensors, name, {
      value: { shape: [...item.shape], data: await item.toArray() },
      enumerable: true,
    });
  }
  const bytes = encodeSafetensors(tensors, metadata);
  await writeFileAtomic(path, bytes);
}

/**
 * Reads a safetensors file (F32 tensors only) into new GPU tensors, which the caller owns. The
 * file is fully validated first (see `decodeSafetensors`); errors name the file.
 */
export async function loadSafetensors(path: string): Promise<LoadedSafetensors> {
  const bytes = await Deno.readFile(path);
  let decoded: DecodedSafetensors;
  try {
    decoded = decodeSafetensors(bytes);
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`);
  }
  const made: [string, Tensor][] = [];
  try {
    for (const [name, item] of Object.entries(decoded.tensors)) {
      made.push([name, tensor(item.data, item.shape)]);
    }
  } catch (error) {
    for (const [, item] of made) item.dispose();
    throw error;
  }
  return { tensors: Object.fromEntries(made), metadata: decoded.metadata };
}
