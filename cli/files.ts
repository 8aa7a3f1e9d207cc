/**
 * Output folders and atomic file writes for the commands.
 *
 * @module
 */

import { join, relative } from "node:path";
import { writeFileAtomic } from "../train/tune/fs_atomic.ts";
import { UsageError } from "./args.ts";

/** Writes text atomically (temporary file, fsync, rename). */
export async function writeText(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, text);
}

/** Writes `value` as indented JSON atomically. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** `2025-01-31_14-05-09` in local time. */
export function timestamp(date: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}_` +
    `${p(date.getHours())}-${p(date.getMinutes())}-${p(date.getSeconds())}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw error;
  }
}

/** Files whose presence means a folder already holds a finished or started run. */
const RUN_MARKERS = ["summary.json", "history.json", "trials.json", "experiment.json"];

/**
 * The output folder: `out` if given (it must not hold another run), else
 * `results/<command>/<timestamp>` (made unique). Created, parents included.
 */
export async function prepareOutDir(command: string, out: string | undefined): Promise<string> {
  if (out !== undefined) {
    for (const marker of RUN_MARKERS) {
      if (await exists(join(out, marker))) {
        throw new UsageError(
          `${command}: --out ${out} already holds a run (${marker}); choose another folder or ` +
            "delete it",
        );
      }
    }
    await makeOutDir(command, out);
    return out;
  }
  const base = join("results", command, timestamp());
  let dir = base;
  for (let n = 2; await exists(dir); n++) dir = `${base}-${n}`;
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}

/**
 * Creates `--out DIR` (parents included); a path that is a file, lies under one, or cannot be
 * created (read-only, no permission) is a `UsageError` naming the flag.
 */
export async function makeOutDir(command: string, out: string): Promise<void> {
  const fail = (why: string) => new UsageError(`${command}: --out ${out}: ${why}`);
  try {
    await Deno.mkdir(out, { recursive: true });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists || error instanceof Deno.errors.NotADirectory) {
      throw fail("a file is in the way (expected a folder, or a path where one can be made)");
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw fail("no permission to create the folder there (read-only?): choose another");
    }
    const code = error instanceof Error ? ` (${error.message})` : "";
    throw fail(`cannot create the folder${code}`);
  }
}

/** `path` relative to the current folder when that is shorter, for messages. */
export function displayPath(path: string): string {
  const rel = relative(Deno.cwd(), path);
  return rel && !rel.startsWith("..") && rel.length < path.length ? rel : path;
}
