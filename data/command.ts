/**
 * The `download` command: find or fetch FashionMNIST, verify it, and print where it is.
 * `cli.ts` calls `downloadCommand(args)` and exits with the code it returns.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DATA_DIR_ENV, MIRRORS_ENV } from "./cache.ts";
import { IDX_FILE_KEYS } from "./checksums.ts";
import { DataError, firstLine } from "./errors.ts";
import {
  ensureFashionMnist,
  type FashionMnistLocation,
  type FashionMnistOptions,
  loadFashionMnist,
} from "./fashion_mnist.ts";
import type { ProgressMode } from "./progress.ts";
import { renderSampleGrid } from "./sample_grid.ts";

/** Help text of the data flags, for the CLI's usage message. */
export const DOWNLOAD_USAGE: string = `Usage: deno run -A cli.ts download [options]

Finds FashionMNIST (cache folder, then /usr/share/datasets/fashion-mnist), or downloads it from
the mirrors, verifies every file (MD5, or SHA-256 of the content) and prints where it is.

Options:
  --data-dir DIR     data folder (default: $${DATA_DIR_ENV}, else $XDG_CACHE_HOME/wgtorch/fashion-mnist,
                     else ~/.cache/wgtorch/fashion-mnist); a folder you name is never changed
                     except to add missing files: a file there that does not verify is an error
  --mirror URL       a base URL (http://, https://, file://) or folder to download from;
                     repeat to try several in order (default: $${MIRRORS_ENV}, else the official
                     mirrors)
  --offline          never download: use only the cache folder and system copies
  --no-system        ignore system copies (/usr/share/datasets/fashion-mnist)
  --retries N        extra attempts per mirror after a network error (default 3)
  --progress MODE    auto | bar | lines | none (default auto: a bar on a terminal)
  --quiet            same as --progress none
  --grid FILE        also draw sample images with their labels to FILE (.png or .svg)
  -h, --help         show this help`;

/** What the download command's arguments ask for. */
export interface DownloadArgs {
  /** Options for `ensureFashionMnist` / `loadFashionMnist`. */
  options: FashionMnistOptions;
  /** Where to draw the sample grid, if asked. */
  grid?: string;
  /** Whether --help was given. */
  help: boolean;
}

/** Parses the download command's arguments; unknown flags are a one-line `DataError`. */
export function parseDownloadArgs(args: readonly string[]): DownloadArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        "data-dir": { type: "string" },
        mirror: { type: "string", multiple: true },
        offline: { type: "boolean" },
        "no-system": { type: "boolean" },
        retries: { type: "string" },
        progress: { type: "string" },
        quiet: { type: "boolean" },
        grid: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: false,
      strict: true,
    });
  } catch (error) {
    throw new DataError(`download: ${firstLine(error)} (see --help)`, "");
  }
  const values = parsed.values;
  const progress = values.quiet ? "none" : (values.progress ?? "auto");
  if (!["auto", "bar", "lines", "none"].includes(progress)) {
    throw new DataError(`download: --progress ${progress}: use auto, bar, lines or none`, "");
  }
  let retries: number | undefined;
  if (values.retries !== undefined) {
    retries = Number(values.retries);
    if (!Number.isInteger(retries) || retries < 0) {
      throw new DataError(`download: --retries ${values.retries}: give an integer >= 0`, "");
    }
  }
  return {
    options: {
      dataDir: values["data-dir"],
      mirrors: values.mirror,
      download: !values.offline,
      systemDirs: values["no-system"] ? [] : undefined,
      retries,
      progress: progress as ProgressMode,
    },
    grid: values.grid,
    help: values.help ?? false,
  };
}

const SOURCE_TEXT = {
  cache: "cached",
  system: "system copy",
  download: "downloaded",
} as const;

/** Lines that say where each file is and how it was verified. */
export function describeLocation(location: FashionMnistLocation): string[] {
  const lines = ["FashionMNIST is ready (all four files verified):"];
  for (const key of IDX_FILE_KEYS) {
    const file = location.files[key];
    const how = file.method === "md5" ? "MD5 of the .gz" : "SHA-256 of the content";
    const from = file.url ? ` from ${file.url}` : "";
    lines.push(`  ${file.path}  (${SOURCE_TEXT[file.source]}${from}; ${how})`);
  }
  lines.push(`Cache folder: ${location.dataDir}`);
  return lines;
}

/**
 * Runs `download` with its arguments (without the command name). Prints where the data is on
 * stdout and errors on stderr; returns the exit code (0 ok, 1 failed, 2 bad arguments).
 */
export async function downloadCommand(
  args: readonly string[],
  io: { out?: (line: string) => void; err?: (line: string) => void } = {},
): Promise<number> {
  const out = io.out ?? ((line: string) => console.log(line));
  const err = io.err ?? ((line: string) => console.error(line));
  let parsed: DownloadArgs;
  try {
    parsed = parseDownloadArgs(args);
  } catch (error) {
    err(error instanceof Error ? error.message : String(error));
    return 2;
  }
  if (parsed.help) {
    out(DOWNLOAD_USAGE);
    return 0;
  }
  try {
    const options = { ...parsed.options, log: err };
    if (parsed.grid) {
      const data = await loadFashionMnist(options);
      for (const line of describeLocation(data.location)) out(line);
      const info = await renderSampleGrid(data.train, parsed.grid, { perClass: 8 });
      out(`Sample grid (${info.indices.length} training images): ${parsed.grid}`);
    } else {
      for (const line of describeLocation(await ensureFashionMnist(options))) out(line);
    }
    return 0;
  } catch (error) {
    if (error instanceof DataError) err(`error: ${error.message}`);
    else err(`error: ${error instanceof Error ? error.stack ?? error.message : error}`);
    return 1;
  }
}
