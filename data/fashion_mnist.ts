/**
 * FashionMNIST end to end: find the four files (cache folder, then system copies, then the
 * mirrors), verify them, parse them, and hand back the training and test sets.
 *
 * @module
 */

import { join } from "node:path";
import {
  FASHION_MNIST_FILES,
  IDX_FILE_KEYS,
  type IdxFileKey,
  type IdxFileSet,
  type IdxFileSpec,
  SYSTEM_DATA_DIRS,
} from "./checksums.ts";
import { isOwnedDataDir, resolveDataDir, resolveMirrors } from "./cache.ts";
import { CLASS_NAMES } from "./classes.ts";

export { CLASS_NAMES };
import { type ImageSet, imageSetOf } from "./dataset.ts";
import { downloadFile } from "./download.ts";
import { DataError, fileSystemError, firstLine } from "./errors.ts";
import { parseImages, parseLabels, readGzipFile } from "./idx.ts";
import { createProgress, type ProgressMode, type ProgressReporter } from "./progress.ts";
import { type Verification, verifyGzFile } from "./verify.ts";

/** Where a file was found: the data folder (`cache`), a system copy, or a fresh download. */
export type FileSource = "cache" | "system" | "download";

/** One file of the dataset, verified unless `loadFashionMnist` was given `verify: false`. */
export interface LocatedFile {
  /** What the file is. */
  spec: IdxFileSpec;
  /** Its path. */
  path: string;
  /** Where it came from. */
  source: FileSource;
  /**
   * How it was verified: MD5 of the .gz, SHA-256 of the uncompressed content, or `"none"`: read
   * as it is (`verify: false`).
   */
  method: "md5" | "sha256" | "none";
  /** The URL it was downloaded from (downloads only). */
  url?: string;
}

/** The four verified files and the cache folder. */
export interface FashionMnistLocation {
  /** The cache folder (downloads go there; it may not exist when nothing was downloaded). */
  dataDir: string;
  /** The files, by key. */
  files: Record<IdxFileKey, LocatedFile>;
}

/** Options of `ensureFashionMnist` and `loadFashionMnist`. */
export interface FashionMnistOptions {
  /**
   * The data folder (the --data-dir flag); default WGTORCH_DATA_DIR or the XDG cache. A folder
   * named here or by WGTORCH_DATA_DIR is the user's: a file in it that does not verify is an
   * error, never deleted or replaced; only the default cache folder heals itself.
   */
  dataDir?: string;
  /** Mirrors (the --mirror flags); default WGTORCH_MIRRORS or the official ones. */
  mirrors?: readonly string[];
  /** Folders of system copies, searched after the cache (default /usr/share/datasets/...). */
  systemDirs?: readonly string[];
  /** Whether to download what is missing (default true); false fails instead. */
  download?: boolean;
  /** The files and their checksums (default: the official FashionMNIST release). */
  files?: IdxFileSet;
  /** Extra attempts per mirror after a network error (default 3). */
  retries?: number;
  /** First retry back-off in ms, doubled each time (default 1000). */
  backoffMs?: number;
  /** Abandon an attempt after this long without data, in ms (default 30 000). */
  stallTimeoutMs?: number;
  /** Progress: a mode (default `auto`) or a reporter. */
  progress?: ProgressMode | ProgressReporter;
  /** Where notices go (corrupt cached files moved aside, retries); default `console.error`. */
  log?: (line: string) => void;
}

interface Found extends LocatedFile {
  raw: Uint8Array | null;
}

/** Moves a corrupt file of the owned cache aside (`NAME.corrupt-TIME`) rather than deleting it. */
async function moveAsideCorrupt(path: string, reason: string, log: (line: string) => void) {
  const aside = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  try {
    await Deno.rename(path, aside);
  } catch (error) {
    throw fileSystemError(error, path, "moving a corrupt cached file aside");
  }
  log(`${path}: corrupt cached file (${reason}); moved aside to ${aside}; fetching it again`);
}

/**
 * The error for files of a folder the user named that are not the official ones: it names each
 * file and why, says that nothing was changed, and how to proceed.
 */
function notOfficialError(
  dataDir: string,
  failed: readonly { path: string; reason: string }[],
): DataError {
  const files = failed.map((file) => `${file.path} (${file.reason})`).join(", ");
  const [is, them, are] = failed.length === 1
    ? ["is not the official FashionMNIST file", "this file", "it is"]
    : ["are not the official FashionMNIST files", "these files", "they are"];
  return new DataError(
    `${files}: ${is}. Nothing was changed in ${dataDir}, a folder you named. To use ${them} as ` +
      `${are}, load it with \`verify: false\`; for FashionMNIST, choose another folder with the ` +
      "`dataDir` option or WGTORCH_DATA_DIR, or leave both unset to use the default cache.",
    failed[0].path,
  );
}

async function locate(
  spec: IdxFileSpec,
  dataDir: string,
  verdict: Verification | null,
  options: FashionMnistOptions,
  shared: { progress: ProgressReporter; unreachable: Map<string, string> },
): Promise<Found> {
  const log = options.log ?? ((line: string) => console.error(line));
  const cached = join(dataDir, spec.name);
  if (verdict?.ok) return { spec, path: cached, source: "cache", ...verdict };
  // Only the owned cache gets here with a corrupt file (see locateAll).
  if (verdict) await moveAsideCorrupt(cached, verdict.reason, log);
  for (const dir of options.systemDirs ?? SYSTEM_DATA_DIRS) {
    const path = join(dir, spec.name);
    let system;
    try {
      system = await verifyGzFile(path, spec);
    } catch (error) {
      log(`${path}: ignoring the system copy: ${firstLine(error)}`);
      continue;
    }
    if (system?.ok) return { spec, path, source: "system", ...system };
    if (system) log(`${path}: ignoring the system copy, it does not verify (${system.reason})`);
  }
  if (options.download === false) {
    const places = [dataDir, ...(options.systemDirs ?? SYSTEM_DATA_DIRS)].join(", ");
    throw new DataError(
      `${spec.name}: not found in ${places}, and downloading is off. Run the download ` +
        `command (deno run -A cli.ts download) or copy the file to ${dataDir}.`,
      cached,
    );
  }
  const result = await downloadFile(spec, dataDir, {
    mirrors: resolveMirrors(options.mirrors),
    retries: options.retries,
    backoffMs: options.backoffMs,
    stallTimeoutMs: options.stallTimeoutMs,
    progress: shared.progress,
    log,
    unreachable: shared.unreachable,
  });
  return {
    spec,
    path: result.path,
    source: "download",
    method: result.method,
    url: result.url,
    raw: result.raw,
  };
}

/** The four files, found (with their bytes when just downloaded), and where they are. */
async function locateAll(
  options: FashionMnistOptions,
): Promise<{ found: Record<IdxFileKey, Found>; location: FashionMnistLocation }> {
  const dataDir = resolveDataDir(options.dataDir);
  const files = options.files ?? FASHION_MNIST_FILES;
  const progress = typeof options.progress === "object"
    ? options.progress
    : createProgress({ mode: options.progress });
  const shared = { progress, unreachable: new Map<string, string>() };
  const verdicts = {} as Record<IdxFileKey, Verification | null>;
  for (const key of IDX_FILE_KEYS) {
    verdicts[key] = await verifyGzFile(join(dataDir, files[key].name), files[key]);
  }
  if (!isOwnedDataDir(dataDir)) {
    const failed = IDX_FILE_KEYS.flatMap((key) => {
      const verdict = verdicts[key];
      return verdict && !verdict.ok
        ? [{ path: join(dataDir, files[key].name), reason: verdict.reason }]
        : [];
    });
    if (failed.length > 0) throw notOfficialError(dataDir, failed);
  }
  const found = {} as Record<IdxFileKey, Found>;
  // One file at a time: downloads share one progress line and one list of dead mirrors.
  for (const key of IDX_FILE_KEYS) {
    found[key] = await locate(files[key], dataDir, verdicts[key], options, shared);
  }
  const located = {} as Record<IdxFileKey, LocatedFile>;
  for (const key of IDX_FILE_KEYS) {
    const { raw: _raw, ...file } = found[key];
    located[key] = file;
  }
  return { found, location: { dataDir, files: located } };
}

/**
 * Makes sure the four files are available and verified, without parsing them: files in the
 * data folder that verify are used as they are, then system copies (verified by content), then
 * downloads from the mirrors into the data folder. A file there that does not verify is moved
 * aside (`NAME.corrupt-TIME`) and fetched again only in the default cache folder, which the
 * library owns; in a folder the user named (`dataDir`, WGTORCH_DATA_DIR) it is a `DataError`
 * that names every such file, and nothing is changed.
 */
export async function ensureFashionMnist(
  options: FashionMnistOptions = {},
): Promise<FashionMnistLocation> {
  return (await locateAll(options)).location;
}

/** Options of `loadFashionMnist`: those of `ensureFashionMnist`, and whether to verify. */
export interface LoadFashionMnistOptions extends FashionMnistOptions {
  /**
   * Whether to verify the files' checksums (default true). `false` reads the four files of the
   * data folder (`dataDir`, else WGTORCH_DATA_DIR, else the cache) as they are, for files of
   * your own in FashionMNIST's IDX format under its file names: no checksum, any image count, no
   * system copy and no download. Errors still name a file that is missing or not IDX.
   */
  verify?: boolean;
}

/** The training and test sets, and where their files are. */
export interface FashionMnist {
  /** The training set (60,000 images). */
  train: ImageSet;
  /** The test set (10,000 images). */
  test: ImageSet;
  /** Where the files were found. */
  location: FashionMnistLocation;
}

async function readSet(images: Found, labels: Found, classes: number): Promise<ImageSet> {
  const [imageBytes, labelBytes] = await Promise.all([
    images.raw ?? readGzipFile(images.path),
    labels.raw ?? readGzipFile(labels.path),
  ]);
  const parsedImages = parseImages(imageBytes, images.path, { count: images.spec.count });
  const parsedLabels = parseLabels(labelBytes, labels.path, { count: labels.spec.count, classes });
  if (parsedLabels.count !== parsedImages.count) {
    throw new DataError(
      `${labels.path}: holds ${parsedLabels.count} labels but ${images.path} holds ` +
        `${parsedImages.count} images: the two files do not belong together. Delete both so ` +
        "that they are fetched again.",
      labels.path,
    );
  }
  return imageSetOf(parsedImages, parsedLabels);
}

/** The four files of `dataDir` read as they are, with no checksum (`verify: false`). */
async function readUnverified(options: FashionMnistOptions): Promise<FashionMnist> {
  const dataDir = resolveDataDir(options.dataDir);
  const files = options.files ?? FASHION_MNIST_FILES;
  const located = {} as Record<IdxFileKey, LocatedFile>;
  for (const key of IDX_FILE_KEYS) {
    located[key] = {
      spec: files[key],
      path: join(dataDir, files[key].name),
      source: "cache",
      method: "none",
    };
  }
  const read = async (images: LocatedFile, labels: LocatedFile): Promise<ImageSet> => {
    const parsedImages = parseImages(await readGzipFile(images.path), images.path);
    const parsedLabels = parseLabels(await readGzipFile(labels.path), labels.path, {
      count: parsedImages.count,
      classes: CLASS_NAMES.length,
    });
    return imageSetOf(parsedImages, parsedLabels);
  };
  const train = await read(located.trainImages, located.trainLabels);
  const test = await read(located.testImages, located.testLabels);
  return { train, test, location: { dataDir, files: located } };
}

/**
 * Finds (or downloads) and parses FashionMNIST: 60,000 training and 10,000 test images of
 * 28x28 bytes with their labels. Errors are one line that names the file and the fix. With
 * `verify: false`, reads the four files of the data folder as they are instead.
 *
 * @example Load the training and test sets (downloads about 30 MB once, then uses the cache)
 * ```ts ignore
 * // ignore: downloads FashionMNIST, too slow and needs the network for `deno test --doc`.
 * import { loadFashionMnist } from "@wgtorch/wgtorch/data";
 *
 * const { train, test, location } = await loadFashionMnist();
 * console.log(train.count, test.count, location.dataDir); // 60000 10000 ~/.cache/wgtorch/...
 * ```
 *
 * @example Files of your own in FashionMNIST's format, read without checksums
 * ```ts ignore
 * // ignore: needs the four IDX .gz files in ./my-data.
 * import { loadFashionMnist } from "@wgtorch/wgtorch/data";
 *
 * const { train } = await loadFashionMnist({ dataDir: "./my-data", verify: false });
 * ```
 */
export async function loadFashionMnist(
  options: LoadFashionMnistOptions = {},
): Promise<FashionMnist> {
  if (options.verify === false) return await readUnverified(options);
  const { found, location } = await locateAll(options);
  const classes = CLASS_NAMES.length;
  const [train, test] = await Promise.all([
    readSet(found.trainImages, found.trainLabels, classes),
    readSet(found.testImages, found.testLabels, classes),
  ]);
  return { train, test, location };
}
