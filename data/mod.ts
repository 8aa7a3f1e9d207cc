/**
 * FashionMNIST for wgtorch: verified download from mirrors (or the system copy), IDX parsing,
 * the seeded train/validation split, GPU loaders that gather each batch in one dispatch, and
 * sample-image figures.
 *
 * ```ts ignore
 * import { DataLoader, GpuDataset, loadFashionMnist, splitTrainVal } from "./data/mod.ts";
 * const data = await loadFashionMnist();            // downloads once, then uses the cache
 * const { train, val } = splitTrainVal(data.train, { seed: 0 });  // 48,000 / 12,000
 * const loader = new DataLoader(new GpuDataset(train), { batchSize: 128, seed: 0 });
 * for (const { x, y, dispose } of loader.batches(0)) { ...; dispose(); }
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
  SYSTEM_DATA_DIRS,
} from "./checksums.ts";
export {
  DATA_DIR_ENV,
  defaultDataDir,
  isOwnedDataDir,
  MIRRORS_ENV,
  resolveDataDir,
  resolveMirrors,
} from "./cache.ts";
export {
  type DownloadAttempt,
  DownloadError,
  downloadFile,
  type DownloadOptions,
  type DownloadResult,
  ensureDirectory,
  normalizeMirror,
  parseMirrorList,
} from "./download.ts";
export { DataError, fileSystemError, type FixHint } from "./errors.ts";
export {
  encodeIdx,
  gunzip,
  gzip,
  type IdxArray,
  type IdxExpectation,
  type IdxImages,
  type IdxLabels,
  parseIdx,
  parseImages,
  parseLabels,
  readGzipFile,
} from "./idx.ts";
export { md5Hex, sha256Hex, type Verification, verifyGzBytes, verifyGzFile } from "./verify.ts";
export {
  createProgress,
  formatBytes,
  formatDuration,
  formatProgressLine,
  type ProgressMode,
  type ProgressOptions,
  type ProgressReporter,
} from "./progress.ts";
export {
  CLASS_NAMES,
  ensureFashionMnist,
  type FashionMnist,
  type FashionMnistLocation,
  type FashionMnistOptions,
  type FileSource,
  loadFashionMnist,
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
  DataLoader,
  type DataLoaderOptions,
  GpuDataset,
  type GpuDatasetOptions,
} from "./loader.ts";
export { gatherBatch } from "./gather.ts";
export {
  renderSampleGrid,
  type SampleGridInfo,
  type SampleGridOptions,
  sampleGridPng,
  sampleGridSvg,
} from "./sample_grid.ts";
export { crc32, encodePng, type RasterImage } from "./png.ts";
export {
  describeLocation,
  DOWNLOAD_USAGE,
  type DownloadArgs,
  downloadCommand,
  parseDownloadArgs,
} from "./command.ts";
