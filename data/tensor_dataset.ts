/**
 * `TensorDataset`: tensors with a common first dimension (samples), held on the GPU once, for
 * `DataLoader` to gather batches from: float features of any shape, images (u8 or f32), float
 * or integer targets.
 *
 * @module
 */

import { keep } from "../nn/scope.ts";
import { type DType, formatShape, Tensor, tensor, type TypedArray } from "../nn/tensor.ts";

/**
 * One tensor of a `TensorDataset` with its options: `data` (a CPU typed array or a GPU tensor),
 * its `shape`, and a `scale` applied on the GPU as batches are gathered.
 */
export interface TensorDatasetEntry {
  /**
   * The values: a `Float32Array` (f32), `Int32Array` (i32) or `Uint8Array` (u8), uploaded once,
   * or a GPU `Tensor`, used in place (no copy).
   */
  data: TypedArray | Tensor;
  /**
   * The shape, first dimension the samples (default: a typed array's `[length]`, a tensor's own
   * shape; for a tensor, a new shape of the same size views it without a copy).
   */
  shape?: readonly number[];
  /**
   * Batches of this tensor are f32, `value * scale` (e.g. `1 / 255` for u8 images to [0, 1]);
   * without it they keep the tensor's dtype.
   */
  scale?: number;
}

/** What `TensorDataset` takes for each tensor. */
export type TensorDatasetInput = TypedArray | Tensor | TensorDatasetEntry;

/** One tensor of a `TensorDataset`, as held on the GPU. */
export interface DatasetTensor {
  /** The samples, `[count, ...sampleShape]` (a view this dataset owns, or its upload). */
  readonly tensor: Tensor;
  /** The scale applied as batches are gathered (null: none, batches keep the dtype). */
  readonly scale: number | null;
  /** The dtype of this tensor's batches (`f32` when scaled). */
  readonly batchDtype: DType;
  /** The shape of one sample. */
  readonly sampleShape: readonly number[];
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (typeof value === "object") return `an object (${Object.keys(value).join(", ") || "empty"})`;
  return `a ${typeof value}`;
}

function dtypeOf(data: unknown): DType | null {
  if (data instanceof Float32Array) return "f32";
  if (data instanceof Int32Array) return "i32";
  if (data instanceof Uint8Array) return "u8";
  return null;
}

/** The tensor of `input` (uploaded, or a view of the caller's), checked. */
function held(input: TensorDatasetInput, index: number): DatasetTensor {
  const where = `TensorDataset: tensor ${index}`;
  const entry: TensorDatasetEntry = input instanceof Tensor || ArrayBuffer.isView(input)
    ? { data: input as TypedArray | Tensor }
    : input;
  if (entry === null || typeof entry !== "object" || !("data" in entry)) {
    throw new TypeError(
      `${where} is ${describe(input)}; expected a Float32Array, Int32Array, Uint8Array, a ` +
        `Tensor, or { data, shape?, scale? }`,
    );
  }
  const { data, scale } = entry;
  if (scale !== undefined && !(typeof scale === "number" && Number.isFinite(scale))) {
    throw new RangeError(`${where}: scale must be a finite number, got ${scale}`);
  }
  let out: Tensor;
  if (data instanceof Tensor) {
    if (data.isDisposed) throw new Error(`${where} was disposed`);
    const shape = entry.shape ?? data.shape;
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== data.size) {
      throw new Error(
        `${where}: shape ${formatShape(shape)} (${size} elements) does not fit its ` +
          `${formatShape(data.shape)} (${data.size} elements)`,
      );
    }
    out = keep(data.view(shape));
  } else {
    const dtype = dtypeOf(data);
    if (dtype === null) {
      throw new TypeError(
        `${where} is ${describe(data)}; expected a Float32Array (f32), Int32Array (i32), ` +
          `Uint8Array (u8) or a Tensor`,
      );
    }
    const array = data as TypedArray;
    const shape = entry.shape ?? [array.length];
    const size = shape.reduce((a, b) => a * b, 1);
    if (!shape.every((d) => Number.isInteger(d) && d >= 0) || size !== array.length) {
      throw new Error(
        `${where}: shape ${formatShape(shape)} (${size} elements) does not fit its ` +
          `${array.length} values`,
      );
    }
    out = keep(tensor(array, shape, { dtype }));
  }
  if (out.rank === 0) {
    out.dispose();
    throw new Error(
      `${where} has shape []; every tensor needs a first dimension, its samples (e.g. [N])`,
    );
  }
  return {
    tensor: out,
    scale: scale ?? null,
    batchDtype: scale === undefined ? out.dtype : "f32",
    sampleShape: out.shape.slice(1),
  };
}

/**
 * Tensors with a common first dimension, the samples, held on the GPU once (PyTorch's
 * `TensorDataset`). Each is a CPU typed array (`Float32Array`, `Int32Array`, `Uint8Array`:
 * f32, i32, u8), uploaded once, or a GPU `Tensor`, used without a copy; `{ data, shape, scale }`
 * gives a typed array its shape, or has batches scaled to f32 on the GPU (u8 images by
 * `1 / 255`). A `DataLoader` gathers its batches on the GPU.
 *
 * The dataset owns its uploads and its views of the tensors given: `dispose()` frees those (the
 * caller's own tensors stay the caller's, to dispose when it likes).
 *
 * @example Features [10, 3] and i32 class targets, batches of 4
 * ```ts
 * import { init } from "@wgtorch/wgtorch";
 * import { DataLoader, TensorDataset } from "@wgtorch/wgtorch/data";
 *
 * await init();
 * const features = new Float32Array(30).map((_, i) => i / 30);
 * const classes = Int32Array.from({ length: 10 }, (_, i) => i % 3);
 * const dataset = new TensorDataset({ data: features, shape: [10, 3] }, classes);
 * const loader = new DataLoader(dataset, { batchSize: 4, seed: 0 });
 * for (const [x, y] of loader.batches(0)) console.log(x.shape, y.dtype); // [4, 3] "i32", ..., [2, 3]
 * loader.dispose();
 * dataset.dispose();
 * ```
 */
export class TensorDataset {
  /** The tensors, in the order given. */
  readonly tensors: readonly DatasetTensor[];
  /** Number of samples (the common first dimension). */
  readonly count: number;

  /** Holds `inputs` on the GPU (call `init()` first). */
  constructor(...inputs: TensorDatasetInput[]) {
    if (inputs.length === 0) {
      throw new Error("TensorDataset: needs at least one tensor, got none");
    }
    const tensors: DatasetTensor[] = [];
    try {
      for (const [index, input] of inputs.entries()) {
        const entry = held(input, index);
        tensors.push(entry);
        const first = tensors[0].tensor.shape[0];
        const length = entry.tensor.shape[0];
        if (length !== first) {
          throw new Error(
            `TensorDataset: tensor ${index} has ${length} samples (shape ` +
              `${formatShape(entry.tensor.shape)}) but tensor 0 has ${first} (shape ` +
              `${formatShape(tensors[0].tensor.shape)}); every tensor needs the same first ` +
              `dimension`,
          );
        }
      }
    } catch (error) {
      for (const entry of tensors) entry.tensor.dispose();
      throw error;
    }
    this.tensors = tensors;
    this.count = tensors[0].tensor.shape[0];
  }

  /** Number of samples (as `count`; PyTorch's `len(dataset)`). */
  get length(): number {
    return this.count;
  }

  /** True once disposed. */
  get isDisposed(): boolean {
    return this.tensors[0].tensor.isDisposed;
  }

  /** Frees the dataset's uploads and views (tensors given stay the caller's). */
  dispose(): void {
    for (const entry of this.tensors) entry.tensor.dispose();
  }
}
