/**
 * The data of a command: FashionMNIST found (or downloaded) and verified by the data layer, or,
 * with `--no-verify`, four IDX .gz files read from `--data-dir` as they are; then limited, split
 * into training and validation sets, and uploaded to the GPU.
 *
 * @module
 */

import { join } from "node:path";
import { FASHION_MNIST_FILES } from "../data/checksums.ts";
import { type ImageSet, imageSetOf, splitTrainVal, subset } from "../data/dataset.ts";
import { CLASS_NAMES, loadFashionMnist } from "../data/fashion_mnist.ts";
import { parseImages, parseLabels, readGzipFile } from "../data/idx.ts";
import { DataLoader, GpuDataset } from "../data/loader.ts";
import type { Flags } from "./args.ts";
import { UsageError } from "./args.ts";

/** How the data is chosen (the data flags). */
export interface DataChoice {
  /** The cache folder, or with `verify: false` the folder holding the four files. */
  dataDir?: string;
  /** Verify checksums (default); false reads `dataDir` as it is. */
  verify: boolean;
  /** Never download. */
  offline: boolean;
  /** Use only the first N training images. */
  limit?: number;
  /** Use only the first N test images. */
  testLimit?: number;
  /** Validation fraction. */
  valSplit: number;
  /** Swap the parts (the notebook's quirk). */
  swap: boolean;
  /** Seed of the split. */
  splitSeed: number;
}

/** The data choice given by the data flags. */
export function dataChoice(command: string, flags: Flags): DataChoice {
  const verify = !flags.boolean("no-verify");
  if (!verify && !flags.has("data-dir")) {
    throw new UsageError(
      `${command}: --no-verify needs --data-dir DIR (the folder with the files)`,
    );
  }
  const number = (name: string) => flags.declared(name) ? flags.number(name) : undefined;
  const choice: DataChoice = {
    dataDir: flags.string("data-dir"),
    verify,
    offline: flags.boolean("offline"),
    limit: number("limit"),
    testLimit: number("test-limit"),
    valSplit: number("val-split") ?? 0.2,
    swap: flags.declared("swap-split") && flags.boolean("swap-split"),
    splitSeed: number("split-seed") ?? 0,
  };
  // Known from the flags alone, before the device and the data are touched: a set empty with
  // --limit N images is empty with fewer too. `prepareData` checks again with the real count.
  if (choice.limit !== undefined || (choice.swap && choice.valSplit === 0)) {
    const early = emptySetProblem(choice, choice.limit ?? 1);
    if (early) throw new UsageError(`${command}: ${early}`);
  }
  return choice;
}

/**
 * Why splitting `pool` training images as `choice` says leaves the training set (or a requested
 * validation set) empty, naming the flags to change; null when both have images. Counts as
 * `splitTrainVal` does: `round(pool * valSplit)` images are held out.
 */
export function emptySetProblem(choice: DataChoice, pool: number): string | null {
  if (pool === 0) return "the training set holds no images";
  const held = Math.round(pool * choice.valSplit);
  const [train, val] = choice.swap ? [held, pool - held] : [pool - held, held];
  const flags = `${choice.limit !== undefined ? `--limit ${choice.limit} with ` : ""}` +
    `--val-split ${choice.valSplit}${choice.swap ? " --swap-split" : ""}`;
  const images = `${pool} training image${pool === 1 ? "" : "s"}`;
  if (train === 0) {
    return choice.swap
      ? `${flags} leaves no training images (--swap-split trains on the images held out, ` +
        `${held} of ${choice.valSplit === 0 ? "any" : images}): raise --val-split or drop ` +
        "--swap-split"
      : `${flags} leaves no training images (all ${images} held out for validation): lower ` +
        `--val-split${choice.limit !== undefined ? " or raise --limit" : ""}`;
  }
  if (val === 0 && choice.valSplit > 0) {
    return `${flags} leaves no validation images (of ${images}): use --val-split 0 for none, ` +
      `or raise ${choice.swap ? "" : "--val-split or "}--limit`;
  }
  return null;
}

/** How the images were split, for reports. */
export interface SplitInfo {
  /** Training images. */
  train: number;
  /** Validation images. */
  val: number;
  /** Test images. */
  test: number;
  /** Training images available before the split (after `--limit`). */
  pool: number;
  /** The validation fraction. */
  valSplit: number;
  /** Whether the parts were swapped. */
  swapped: boolean;
  /** The split's seed. */
  splitSeed: number;
  /** `--limit`, if given. */
  limit?: number;
  /** `--test-limit`, if given. */
  testLimit?: number;
}

/** The three sets on the CPU, where they came from, and the split. */
export interface PreparedData {
  /** Training images. */
  train: ImageSet;
  /** Validation images (possibly empty). */
  val: ImageSet;
  /** Test images. */
  test: ImageSet;
  /** Where the files were, in words. */
  source: string;
  /** The split. */
  split: SplitInfo;
}

function first(set: ImageSet, count: number | undefined): ImageSet {
  if (count === undefined || count >= set.count) return set;
  return subset(set, Int32Array.from({ length: count }, (_, i) => i));
}

async function readUnverified(dir: string): Promise<{ train: ImageSet; test: ImageSet }> {
  const read = async (images: string, labels: string): Promise<ImageSet> => {
    const imagePath = join(dir, images), labelPath = join(dir, labels);
    const parsedImages = parseImages(await readGzipFile(imagePath), imagePath);
    const parsedLabels = parseLabels(await readGzipFile(labelPath), labelPath, {
      count: parsedImages.count,
      classes: CLASS_NAMES.length,
    });
    return imageSetOf(parsedImages, parsedLabels);
  };
  const files = FASHION_MNIST_FILES;
  return {
    train: await read(files.trainImages.name, files.trainLabels.name),
    test: await read(files.testImages.name, files.testLabels.name),
  };
}

/** Loads, limits and splits the data. Data-layer errors propagate (`DataError`). */
export async function prepareData(
  choice: DataChoice,
  log: (line: string) => void,
): Promise<PreparedData> {
  let train: ImageSet, test: ImageSet, source: string;
  if (!choice.verify) {
    ({ train, test } = await readUnverified(choice.dataDir!));
    source = `${choice.dataDir} (IDX files read without verification: --no-verify)`;
  } else {
    const data = await loadFashionMnist({
      dataDir: choice.dataDir,
      download: !choice.offline,
      log,
    });
    ({ train, test } = data);
    const file = data.location.files.trainImages;
    const how = file.method === "md5" ? "MD5 verified" : "SHA-256 of the content verified";
    source = `FashionMNIST from ${file.path.replace(/\/[^/]*$/, "")} (${file.source}, ${how})`;
  }
  const pool = first(train, choice.limit);
  const empty = emptySetProblem(choice, pool.count);
  if (empty) throw new UsageError(pool.count === 0 ? `${empty}: ${source}` : empty);
  const parts = splitTrainVal(pool, {
    valFraction: choice.valSplit,
    seed: choice.splitSeed,
    swap: choice.swap,
  });
  const testSet = first(test, choice.testLimit);
  if (testSet.count === 0) throw new UsageError(`the test set holds no images: ${source}`);
  return {
    train: parts.train,
    val: parts.val,
    test: testSet,
    source,
    split: {
      train: parts.train.count,
      val: parts.val.count,
      test: testSet.count,
      pool: pool.count,
      valSplit: choice.valSplit,
      swapped: choice.swap,
      splitSeed: choice.splitSeed,
      ...(choice.limit !== undefined ? { limit: choice.limit } : {}),
      ...(choice.testLimit !== undefined ? { testLimit: choice.testLimit } : {}),
    },
  };
}

/** The sets uploaded to the GPU once, shared by every run of a command. */
export class GpuData {
  /** Training images. */
  readonly train: GpuDataset;
  /** Validation images, or null when there are none. */
  readonly val: GpuDataset | null;
  /** Test images. */
  readonly test: GpuDataset;
  /** Where the data came from and how it was split. */
  readonly prepared: PreparedData;

  /** Uploads `prepared` (call `init()` first). */
  constructor(prepared: PreparedData) {
    this.prepared = prepared;
    this.train = new GpuDataset(prepared.train);
    this.val = prepared.val.count > 0 ? new GpuDataset(prepared.val) : null;
    this.test = new GpuDataset(prepared.test);
  }

  /** An unshuffled loader over `set` for evaluation. */
  evalLoader(set: GpuDataset, batchSize: number): DataLoader {
    return new DataLoader(set, { batchSize, shuffle: false });
  }

  /** Frees the GPU memory. */
  dispose(): void {
    this.train.dispose();
    this.val?.dispose();
    this.test.dispose();
  }
}

/** One line describing the split, e.g. for reports. */
export function describeSplit(split: SplitInfo): string {
  const n = (value: number) => value.toLocaleString("en-US");
  const parts = [
    `${n(split.train)} training / ${n(split.val)} validation images`,
    `(${
      Math.round(split.valSplit * 100)
    }% held out by a seeded shuffle, split seed ${split.splitSeed}` +
    `${split.swapped ? "; parts swapped as in the study's notebook" : ""})`,
    `of ${
      split.limit !== undefined ? `the first ${n(split.pool)}` : n(split.pool)
    } training images;`,
    `test: ${n(split.test)} images${split.testLimit !== undefined ? " (--test-limit)" : ""}`,
  ];
  return parts.join(" ");
}
