/**
 * Where the data lives: the cache folder (flag, environment, XDG default), the system copies
 * installed by distribution packages, and the mirror list (flags, environment, defaults).
 *
 * @module
 */

import { join, resolve } from "node:path";
import { FASHION_MNIST_MIRRORS } from "./checksums.ts";
import { parseMirrorList } from "./download.ts";

/** Environment variable that overrides the data folder. */
export const DATA_DIR_ENV = "WGTORCH_DATA_DIR";
/** Environment variable that replaces the mirror list (URLs separated by commas or spaces). */
export const MIRRORS_ENV = "WGTORCH_MIRRORS";

function env(name: string): string | undefined {
  try {
    const value = Deno.env.get(name);
    return value === "" ? undefined : value;
  } catch {
    return undefined; // no --allow-env: behave as if unset
  }
}

/**
 * The default cache folder: `$XDG_CACHE_HOME/wgtorch/fashion-mnist`, else
 * `~/.cache/wgtorch/fashion-mnist` (`%LOCALAPPDATA%\wgtorch\fashion-mnist` on Windows), else
 * `.cache/wgtorch/fashion-mnist` under the working folder when no home is known.
 */
export function defaultDataDir(): string {
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "wgtorch", "fashion-mnist");
  if (Deno.build.os === "windows") {
    const local = env("LOCALAPPDATA");
    if (local) return join(local, "wgtorch", "fashion-mnist");
  }
  const home = env("HOME") ?? env("USERPROFILE");
  if (home) return join(home, ".cache", "wgtorch", "fashion-mnist");
  return resolve(".cache", "wgtorch", "fashion-mnist");
}

/** The data folder: `dataDir` (the --data-dir flag) if given, else WGTORCH_DATA_DIR, else the default. */
export function resolveDataDir(dataDir?: string): string {
  return resolve(dataDir ?? env(DATA_DIR_ENV) ?? defaultDataDir());
}

/**
 * Whether `dir` is the cache folder the library owns: the default one (`defaultDataDir()`), and
 * only it. A folder the user named (--data-dir, a `dataDir` option, or WGTORCH_DATA_DIR) may
 * hold their own files under FashionMNIST's names (MNIST uses the same ones), so nothing in it
 * is ever moved or deleted; only the owned cache heals a corrupt file, by moving it aside.
 */
export function isOwnedDataDir(dir: string): boolean {
  return resolve(dir) === resolve(defaultDataDir());
}

/**
 * The mirrors to try, in order: the --mirror flags if any, else WGTORCH_MIRRORS, else the
 * official mirrors (the dataset authors' bucket, then the GitHub repository's raw files).
 */
export function resolveMirrors(mirrors?: readonly string[]): string[] {
  if (mirrors && mirrors.length > 0) return [...mirrors];
  const fromEnv = env(MIRRORS_ENV);
  if (fromEnv && parseMirrorList(fromEnv).length > 0) return parseMirrorList(fromEnv);
  return [...FASHION_MNIST_MIRRORS];
}
