/**
 * In-memory image datasets: a set of uint8 images with labels, subsets, and the seeded
 * train/validation split of the study (80/20 by default, or the notebook's swapped 20/80).
 *
 * @module
 */

import { Rng } from "../nn/random.ts";
import type { IdxImages, IdxLabels } from "./idx.ts";

/** Images and labels held on the CPU as bytes. */
export interface ImageSet {
  /** `count * rows * cols` pixels, 0..255, row-major, image after image. */
  images: Uint8Array;
  /** One class index per image. */
  labels: Uint8Array;
  /** Number of images. */
  count: number;
  /** Rows of each image. */
  rows: number;
  /** Columns of each image. */
  cols: number;
  /** For a subset: which images of the parent set these are, in order. */
  indices?: Int32Array;
}

/** The set of parsed IDX images and their labels (the caller has checked that the counts match). */
export function imageSetOf(images: IdxImages, labels: IdxLabels): ImageSet {
  return {
    images: images.pixels,
    labels: labels.labels,
    count: images.count,
    rows: images.rows,
    cols: images.cols,
  };
}

/** The images of `set` at `indices`, in that order, copied into a new set. */
export function subset(set: ImageSet, indices: Int32Array): ImageSet {
  const pixels = set.rows * set.cols;
  const images = new Uint8Array(indices.length * pixels);
  const labels = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const row = indices[i];
    if (!(row >= 0 && row < set.count)) {
      throw new RangeError(`subset: index ${row} is outside 0..${set.count - 1}`);
    }
    images.set(set.images.subarray(row * pixels, (row + 1) * pixels), i * pixels);
    labels[i] = set.labels[row];
  }
  return { images, labels, count: indices.length, rows: set.rows, cols: set.cols, indices };
}

/** Options of `splitTrainVal`. */
export interface SplitOptions {
  /** Fraction of the set held out for validation (default 0.2: 48,000 / 12,000 of 60,000). */
  valFraction?: number;
  /** Seed of the shuffle that chooses the split (default 0). */
  seed?: number;
  /**
   * Reproduce the study's notebook, which swapped the two parts: train on the small part
   * (12,000) and validate on the large one (48,000). Default false.
   */
  swap?: boolean;
}

/** A training set and a validation set drawn from one set. */
export interface TrainValSplit {
  /** The part to train on. */
  train: ImageSet;
  /** The part to validate on. */
  val: ImageSet;
}

/**
 * Splits `set` by a seeded shuffle, like PyTorch's `random_split`: the first
 * `count - round(count * valFraction)` images of a permutation train, the rest validate (both
 * in permutation order). The same seed always gives the same split.
 */
export function splitTrainVal(set: ImageSet, options: SplitOptions = {}): TrainValSplit {
  const { valFraction = 0.2, seed = 0, swap = false } = options;
  if (!(valFraction >= 0 && valFraction <= 1)) {
    throw new RangeError(`splitTrainVal: valFraction ${valFraction} is not in [0, 1]`);
  }
  const order = new Rng(seed).permutation(set.count);
  const trainCount = set.count - Math.round(set.count * valFraction);
  const first = subset(set, order.slice(0, trainCount));
  const second = subset(set, order.slice(trainCount));
  return swap ? { train: second, val: first } : { train: first, val: second };
}

/** Pixels scaled to [0, 1] as float32 (`value / 255`, torchvision's `ToTensor`), on the CPU. */
export function pixelsToFloat32(images: Uint8Array): Float32Array {
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = images[i] / 255;
  return out;
}

/** How many images of each class `labels` holds (`classes` bins). */
export function classCounts(labels: Uint8Array, classes = 10): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const label of labels) counts[label]++;
  return counts;
}
