/**
 * Data for wgtorch: `TensorDataset` (any tensors held on the GPU once) and `DataLoader` (batches
 * gathered on the GPU, shuffled per epoch by a seed); FashionMNIST: verified download from
 * mirrors (or the system copy), IDX parsing, the seeded train/validation split, `GpuDataset`,
 * and sample-image figures.
 *
 * ```ts ignore
 * // ignore: downloads FashionMNIST (about 30 MB) the first time.
 * import { init } from "@wgtorch/wgtorch";
 * import { DataLoader, GpuDataset, loadFashionMnist, splitTrainVal } from "@wgtorch/wgtorch/data";
 *
 * await init();
 * const data = await loadFashionMnist(); // downloads once, then uses the cache
 * const { train, val } = splitTrainVal(data.train, { valFraction: 0.2, seed: 0 }); // 48,000 / 12,000
 * const loader = new DataLoader(new GpuDataset(train), { batchSize: 128, seed: 0 });
 * for (const { x, y } of loader.batches(0)) console.log(x.shape, y.shape); // freed as the loop moves on
 * ```
 *
 * @module
 */

export {
  FASHION_MNIST_FILES,
  FASHION_MNIST_MIRRORS,
  IDX_FILE_KEYS,
  type IdxFileKey,
  type IdxFileSet,
  type IdxFileSpec,
} from "./checksums.ts";
export { DATA_DIR_ENV, defaultDataDir, MIRRORS_ENV } from "./cache.ts";
export { type DownloadAttempt, DownloadError } from "./download.ts";
export { DataError } from "./errors.ts";
export {
  type IdxArray,
  type IdxExpectation,
  type IdxImages,
  type IdxLabels,
  parseIdx,
  parseImages,
  parseLabels,
} from "./idx.ts";
export {
  formatBar,
  formatDuration,
  formatEta,
  type ProgressMode,
  type ProgressReporter,
  resolveProgressMode,
  StatusLine,
} from "./progress.ts";
export {
  CLASS_NAMES,
  ensureFashionMnist,
  type FashionMnist,
  type FashionMnistLocation,
  type FashionMnistOptions,
  type FileSource,
  loadFashionMnist,
  type LoadFashionMnistOptions,
  type LocatedFile,
} from "./fashion_mnist.ts";
export {
  classCounts,
  type ImageSet,
  pixelsToFloat32,
  type SplitOptions,
  splitTrainVal,
  subset,
  type TrainValSplit,
} from "./dataset.ts";
export {
  type Batch,
  type Collate,
  type CollatedBatch,
  DataLoader,
  type DataLoaderOptions,
  defaultCollate,
  GpuDataset,
  type GpuDatasetOptions,
} from "./loader.ts";
export {
  type DatasetTensor,
  TensorDataset,
  type TensorDatasetEntry,
  type TensorDatasetInput,
} from "./tensor_dataset.ts";
export {
  renderSampleGrid,
  type SampleGridInfo,
  type SampleGridOptions,
  sampleGridPng,
  sampleGridSvg,
} from "./sample_grid.ts";
export { describeLocation } from "./location.ts";
