/**
 * The `download` command: find or fetch FashionMNIST, verify it, and print where it is (and,
 * with `--grid`, draw sample images). The work is the library's `ensureFashionMnist` /
 * `loadFashionMnist`; this file is only the command line around them.
 *
 * @module
 */

import {
  DATA_DIR_ENV,
  describeLocation,
  ensureFashionMnist,
  type FashionMnistOptions,
  loadFashionMnist,
  MIRRORS_ENV,
  type ProgressMode,
  renderSampleGrid,
} from "../data/mod.ts";
import type { Flags } from "./args.ts";
import { HELP_FLAG } from "./flags.ts";
import { type CommandIo, type CommandSpec, CONSOLE_IO, runCommand } from "./harness.ts";

/** `download`'s flags and help. */
export const DOWNLOAD_COMMAND: CommandSpec = {
  name: "download",
  description: `
Finds FashionMNIST (cache folder, then /usr/share/datasets/fashion-mnist), or downloads it from the
mirrors, verifies every file (MD5, or SHA-256 of the content) and prints where it is.`,
  flags: [
    {
      name: "data-dir",
      kind: "string",
      metavar: "DIR",
      help: "data folder; a folder you name is never changed except to add missing files: a file " +
        "there that does not verify is an error",
      defaultText: `$${DATA_DIR_ENV}, else $XDG_CACHE_HOME/wgtorch/fashion-mnist, else ` +
        "~/.cache/wgtorch/fashion-mnist",
    },
    {
      name: "mirror",
      kind: "string",
      multiple: true,
      metavar: "URL",
      help: "a base URL (http://, https://, file://) or folder to download from; repeat to try " +
        "several in order",
      defaultText: `$${MIRRORS_ENV}, else the official mirrors`,
    },
    {
      name: "offline",
      kind: "boolean",
      help: "never download: use only the cache folder and system copies",
    },
    {
      name: "no-system",
      kind: "boolean",
      help: "ignore system copies (/usr/share/datasets/fashion-mnist)",
    },
    {
      name: "retries",
      kind: "integer",
      min: 0,
      default: 3,
      help: "extra attempts per mirror after a network error",
    },
    {
      name: "progress",
      kind: "choice",
      choices: ["auto", "bar", "lines", "none"],
      default: "auto",
      help: "progress on stderr: a bar on a terminal (auto), plain lines, or nothing",
    },
    { name: "quiet", kind: "boolean", help: "same as --progress none" },
    {
      name: "grid",
      kind: "string",
      metavar: "FILE",
      help: "also draw sample images with their labels to FILE (.png or .svg)",
    },
    HELP_FLAG,
  ],
};

/** What `download`'s flags ask for. */
export interface DownloadRequest {
  /** Options for `ensureFashionMnist` / `loadFashionMnist`. */
  options: FashionMnistOptions;
  /** Where to draw the sample grid, if asked. */
  grid?: string;
}

/** The library options that `download`'s parsed flags stand for. */
export function downloadRequest(flags: Flags): DownloadRequest {
  const mirrors = flags.strings("mirror");
  return {
    options: {
      dataDir: flags.string("data-dir"),
      mirrors: mirrors.length > 0 ? mirrors : undefined,
      download: !flags.boolean("offline"),
      systemDirs: flags.boolean("no-system") ? [] : undefined,
      retries: flags.number("retries"),
      progress: (flags.boolean("quiet") ? "none" : flags.string("progress")) as ProgressMode,
    },
    grid: flags.string("grid"),
  };
}

/**
 * Runs `download` with its arguments (without the command name). Prints where the data is on
 * stdout and errors on stderr; resolves to the exit code (0 ok, 1 failed, 2 bad arguments).
 */
export function downloadCommand(
  args: readonly string[],
  io: CommandIo = CONSOLE_IO,
): Promise<number> {
  return runCommand(DOWNLOAD_COMMAND, args, io, async (flags) => {
    const request = downloadRequest(flags);
    const options = { ...request.options, log: io.err };
    if (request.grid) {
      const data = await loadFashionMnist(options);
      for (const line of describeLocation(data.location)) io.out(line);
      const info = await renderSampleGrid(data.train, request.grid, { perClass: 8 });
      io.out(`Sample grid (${info.indices.length} training images): ${request.grid}`);
    } else {
      for (const line of describeLocation(await ensureFashionMnist(options))) io.out(line);
    }
    return 0;
  });
}
