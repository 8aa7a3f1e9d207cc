/**
 * GPU loaders: a `TensorDataset` is held on the GPU once, and each batch is made on the GPU by
 * one gather dispatch per tensor that reads a permutation buffer uploaded once per epoch. No
 * per-batch CPU work on the data, and no readback. `GpuDataset` is FashionMNIST's: u8 images
 * (scaled to [0, 1] as they are gathered) and i32 labels.
 *
 * @module
 */

import { Rng } from "../nn/random.ts";
import { keep, tidy } from "../nn/scope.ts";
import { writeBuffer } from "../nn/gpu/stream.ts";
import { sharedParams } from "../nn/gpu/program.ts";
import { Tensor, tensor } from "../nn/tensor.ts";
import { gpu } from "../nn/gpu/device.ts";
import type { TrainingBatch } from "../train/batch_measure.ts";
import { type ImageSet, pixelsToFloat32 } from "./dataset.ts";
import { gatherRows } from "./gather.ts";
import { TensorDataset } from "./tensor_dataset.ts";

/** Options of `GpuDataset`. */
export interface GpuDatasetOptions {
  /**
   * How images are stored on the GPU: `u8` (default, 1 byte per pixel: the 60,000 training
   * images take 47 MB; batches are scaled to [0, 1] as they are gathered) or `f32` (already
   * scaled; 4x the memory, for small sets).
   */
  dtype?: "u8" | "f32";
}

/**
 * A set of images and labels uploaded to the GPU once: a `TensorDataset` of the images
 * `[count, 1, rows, cols]` (u8 scaled by 1 / 255 as batches are gathered, or f32) and the labels
 * `[count]` (i32).
 */
export class GpuDataset extends TensorDataset {
  /** The images, `[count, rows * cols]`, u8 (0..255) or f32 (0..1). */
  readonly images: Tensor;
  /** The labels, `[count]`, i32. */
  readonly labels: Tensor;
  /** Rows of each image. */
  readonly rows: number;
  /** Columns of each image. */
  readonly cols: number;

  /** Uploads `set` (call `init()` first). The tensors live until `dispose()`, outside any tidy. */
  constructor(set: ImageSet, options: GpuDatasetOptions = {}) {
    const dtype = options.dtype ?? "u8";
    const pixels = set.rows * set.cols;
    if (set.images.length !== set.count * pixels || set.labels.length !== set.count) {
      throw new Error(
        `GpuDataset: ${set.images.length} pixels and ${set.labels.length} labels do not make ` +
          `${set.count} images of ${set.rows}x${set.cols}`,
      );
    }
    const bytes = set.count * pixels * (dtype === "u8" ? 1 : 4);
    const limit = gpu().limits.maxStorageBufferBindingSize;
    if (bytes * 1.25 > limit) {
      throw new Error(
        `GpuDataset: ${set.count} images as ${dtype} take ${bytes} bytes, more than this ` +
          `adapter binds at once (${limit})` + (dtype === "f32" ? '; use dtype "u8"' : ""),
      );
    }
    const data = dtype === "u8" ? set.images : pixelsToFloat32(set.images);
    const images = keep(tensor(data, [set.count, pixels], { dtype }));
    const labels = keep(tensor(Int32Array.from(set.labels), [set.count], { dtype: "i32" }));
    super(
      {
        data: images,
        shape: [set.count, 1, set.rows, set.cols],
        ...(dtype === "u8" ? { scale: 1 / 255 } : {}),
      },
      labels,
    );
    this.images = images;
    this.labels = labels;
    this.rows = set.rows;
    this.cols = set.cols;
  }

  /** Frees the GPU memory. */
  override dispose(): void {
    super.dispose();
    this.images.dispose();
    this.labels.dispose();
  }
}

/** What `collate` makes of a batch's tensors: the model's inputs and the loss's target. */
export interface CollatedBatch {
  /** The model's input, or its inputs (`model.forward(...inputs)`). */
  inputs: Tensor | readonly Tensor[];
  /** The target passed to the loss and the metrics. */
  target: Tensor;
}

/**
 * Makes a batch's per-tensor tensors (one per dataset tensor, in order) into the model's inputs
 * and the target. It may return them, views of them, or new tensors (the batch frees them all).
 */
export type Collate = (tensors: readonly Tensor[]) => CollatedBatch;

/**
 * The default `collate`: every tensor but the last is an input, the last is the target (a
 * single tensor is both, e.g. for an autoencoder).
 */
export function defaultCollate(tensors: readonly Tensor[]): CollatedBatch {
  if (tensors.length === 1) return { inputs: [tensors[0]], target: tensors[0] };
  return { inputs: tensors.slice(0, -1), target: tensors[tensors.length - 1] };
}

/** Options of `DataLoader`. */
export interface DataLoaderOptions {
  /** Examples per batch. */
  batchSize: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  /** Seed of the shuffles; epoch `e` of seed `s` always has the same order (default 0). */
  seed?: number;
  /** Drop the last batch when it is smaller than `batchSize` (default false: keep it). */
  dropLast?: boolean;
  /** Use only the first `limit` examples of the dataset (quick runs). */
  limit?: number;
  /**
   * Hand each batch's tensors to the caller, to dispose (default false: a batch is freed when
   * the loop moves on to the next one, or leaves the loop).
   */
  keepBatches?: boolean;
  /**
   * Makes each batch's tensors (one per dataset tensor) into the model's inputs and the target,
   * what `fit` consumes as `inputs` (or `x`) and `y` (default `defaultCollate`: the last tensor
   * is the target, the others the inputs).
   */
  collate?: Collate;
}

/**
 * One batch: an array of tensors, one per dataset tensor in order (`const [x, y] = batch`), each
 * `[size, ...sampleShape]`, with the collated inputs and target that `fit` consumes. Its tensors
 * are freed when the loop moves on (unless the loader has `keepBatches`, which makes them the
 * caller's to `dispose()`); disposing them earlier is fine.
 */
export interface Batch extends ReadonlyArray<Tensor>, TrainingBatch {
  /** The model's (first) input: for a `GpuDataset`, images `[size, 1, rows, cols]`, f32 in [0, 1]. */
  readonly x: Tensor;
  /** The target: for a `GpuDataset`, labels `[size]`, i32. */
  readonly y: Tensor;
  /** The model's inputs (`model.forward(...inputs)`; `[x]` for one). */
  readonly inputs: readonly Tensor[];
  /** Number of examples (the last batch may be smaller than the batch size). */
  readonly size: number;
  /** Position of the batch in the epoch, from 0. */
  readonly index: number;
  /** Disposes the batch's tensors (and what `collate` made). */
  dispose(): void;
}

function mixSeed(seed: number, epoch: number): number {
  let h = Math.imul((seed | 0) ^ 0x2545f491, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b);
  // The bits above 2^32 count too (seeds below keep their orders): 2^32 is not seed 0.
  const high = Math.floor(seed / 2 ** 32);
  if (high !== 0) h ^= Math.imul((high | 0) ^ 0x6a09e667, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return (h ^ (h >>> 13)) >>> 0;
}

/** Throws unless `collated` is what a `Collate` returns. */
function checkCollated(collated: CollatedBatch): readonly Tensor[] {
  const inputs = collated?.inputs instanceof Tensor ? [collated.inputs] : collated?.inputs;
  if (
    !Array.isArray(inputs) || inputs.length === 0 ||
    !inputs.every((t) => t instanceof Tensor) || !(collated.target instanceof Tensor)
  ) {
    throw new TypeError(
      "DataLoader: collate must return { inputs: Tensor | Tensor[] (at least one), target: " +
        `Tensor }, got ${
          collated === null || typeof collated !== "object"
            ? String(collated)
            : `{ ${Object.keys(collated).join(", ")} }`
        }`,
    );
  }
  return inputs;
}

/**
 * Batches of a `TensorDataset` (or a `GpuDataset`), shuffled each epoch from a seed.
 * `batches(epoch)` uploads the epoch's order once, then makes each batch with one gather
 * dispatch per dataset tensor (never a readback). A batch is an array of tensors, one per
 * dataset tensor, carrying `x`/`inputs` and `y` for `fit` (see `collate`). A batch's tensors live
 * for its turn of the loop: the loader frees them when the loop asks for the next batch or ends
 * (`keepBatches: true` leaves that to the caller).
 *
 * @example Batches of 4 images from a set of 10 (here made up; usually `loadFashionMnist`)
 * ```ts
 * import { init } from "@wgtorch/wgtorch";
 * import { DataLoader, GpuDataset, type ImageSet } from "@wgtorch/wgtorch/data";
 *
 * await init();
 * const set: ImageSet = {
 *   images: new Uint8Array(10 * 28 * 28).fill(128),
 *   labels: Uint8Array.from({ length: 10 }, (_, i) => i),
 *   count: 10,
 *   rows: 28,
 *   cols: 28,
 * };
 * const loader = new DataLoader(new GpuDataset(set), { batchSize: 4, seed: 1 });
 * for (const { x, y } of loader.batches(0)) {
 *   console.log(x.shape, y.shape); // [4, 1, 28, 28] [4] twice, then [2, 1, 28, 28] [2]
 * }
 * ```
 */
export class DataLoader<D extends TensorDataset = TensorDataset> {
  /** The dataset. */
  readonly dataset: D;
  /** Examples per batch. */
  readonly batchSize: number;
  /** Whether each epoch is shuffled. */
  readonly shuffle: boolean;
  /** Seed of the shuffles. */
  readonly seed: number;
  /** Whether a last, smaller batch is dropped. */
  readonly dropLast: boolean;
  /** Examples used per epoch (the dataset's count, or `limit`). */
  readonly count: number;
  /** Whether batches are the caller's to dispose (else freed when the loop moves on). */
  readonly keepBatches: boolean;
  /** Makes a batch's tensors into inputs and target. */
  readonly collate: Collate;
  #order: Tensor | null = null;
  #orderEpoch: number | null = null;
  #current: object | null = null;
  #nextEpoch = 0;

  /** A loader over `dataset`. */
  constructor(dataset: D, options: DataLoaderOptions) {
    const { batchSize, shuffle = true, seed = 0, dropLast = false, limit, keepBatches = false } =
      options;
    if (!(dataset instanceof TensorDataset)) {
      throw new TypeError(
        `DataLoader: dataset must be a TensorDataset (or a GpuDataset), got ${
          dataset === null
            ? "null"
            : typeof dataset === "object"
            ? (dataset as object).constructor?.name ?? "an object"
            : typeof dataset
        }`,
      );
    }
    if (dataset.isDisposed) throw new Error("DataLoader: the dataset was disposed");
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`DataLoader: batchSize ${batchSize} is not a positive integer`);
    }
    if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
      throw new RangeError(`DataLoader: limit ${limit} is not an integer >= 0`);
    }
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(
        `DataLoader: seed ${seed} is not an integer from -(2^53 - 1) to 2^53 - 1`,
      );
    }
    if (options.collate !== undefined && typeof options.collate !== "function") {
      throw new TypeError(
        `DataLoader: collate must be a function (tensors) => { inputs, target }, got ` +
          typeof options.collate,
      );
    }
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.seed = seed;
    this.dropLast = dropLast;
    this.keepBatches = keepBatches;
    this.collate = options.collate ?? defaultCollate;
    this.count = Math.min(dataset.count, limit ?? dataset.count);
  }

  /** Number of batches per epoch. */
  get length(): number {
    return this.dropLast
      ? Math.floor(this.count / this.batchSize)
      : Math.ceil(this.count / this.batchSize);
  }

  /** The order of the examples in `epoch` (what the GPU gathers by), computed on the CPU. */
  epochOrder(epoch: number): Int32Array {
    if (!this.shuffle) return Int32Array.from({ length: this.count }, (_, i) => i);
    return new Rng(mixSeed(this.seed, epoch)).permutation(this.count);
  }

  #upload(epoch: number): Tensor {
    if (this.#order && (this.#orderEpoch === epoch || !this.shuffle)) return this.#order;
    const order = this.epochOrder(epoch);
    if (this.#order) writeBuffer(this.#order.buffer, order);
    else this.#order = keep(tensor(order, [order.length], { dtype: "i32" }));
    this.#orderEpoch = epoch;
    return this.#order;
  }

  /** Gathers the batch of `size` examples at `start` of `order`: one dispatch per tensor. */
  #gather(order: Tensor, start: number, size: number, index: number): Batch {
    const slot = sharedParams(new Uint32Array([start]));
    const tensors = this.dataset.tensors.map((entry) => {
      const out = Tensor.empty([size, ...entry.sampleShape], entry.batchDtype);
      gatherRows(entry.tensor, order, out, start, { scale: entry.scale, params: slot });
      return out;
    });
    let collated: { inputs: readonly Tensor[]; target: Tensor };
    try {
      collated = tidy(() => {
        const made = this.collate(tensors);
        return { inputs: checkCollated(made), target: made.target };
      });
    } catch (error) {
      for (const t of tensors) t.dispose();
      throw error;
    }
    const { inputs, target } = collated;
    const dispose = () => {
      for (const t of tensors) t.dispose();
      for (const t of inputs) t.dispose();
      target.dispose();
    };
    return Object.assign(tensors, { x: inputs[0], y: target, inputs, size, index, dispose });
  }

  /**
   * The batches of `epoch` (default: the epoch after the last one started). Iterate one epoch
   * at a time: starting another epoch ends this one. Each batch is freed when the loop moves on,
   * unless the loader has `keepBatches`.
   */
  *batches(epoch: number = this.#nextEpoch): Generator<Batch, void, undefined> {
    const token = {};
    this.#current = token;
    this.#nextEpoch = epoch + 1;
    if (this.count === 0) return;
    if (this.dataset.isDisposed) {
      throw new Error("DataLoader: the dataset was disposed before its batches were asked for");
    }
    const order = this.#upload(epoch);
    for (let index = 0; index < this.length; index++) {
      if (this.#current !== token) {
        throw new Error(
          "DataLoader: another epoch was started before this one finished; iterate one epoch " +
            "at a time",
        );
      }
      const start = index * this.batchSize;
      const size = Math.min(this.batchSize, this.count - start);
      const batch = this.#gather(order, start, size, index);
      try {
        yield batch;
      } finally {
        // Runs when the loop asks for the next batch, breaks, or throws.
        if (!this.keepBatches) batch.dispose();
      }
    }
  }

  /** Iterates the batches of the next epoch. */
  [Symbol.iterator](): Generator<Batch, void, undefined> {
    return this.batches();
  }

  /** Frees the order buffer (not the dataset). */
  dispose(): void {
    this.#order?.dispose();
    this.#order = null;
    this.#orderEpoch = null;
  }
}
