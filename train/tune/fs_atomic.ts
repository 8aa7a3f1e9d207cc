/**
 * Crash-safe file writes: write a temporary file, fsync it, rename it over the target, fsync the
 * directory. A reader sees the old file or the new one, never a torn one.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

let counter = 0;

/** Writes every byte of `data` to `file` (Deno's `write` may write fewer). */
export async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await file.write(data.subarray(offset));
}

/** fsyncs a directory so a rename or create inside it is durable (best effort: some systems refuse). */
export async function syncDir(path: string): Promise<void> {
  let dir: Deno.FsFile | undefined;
  try {
    dir = await Deno.open(path, { read: true });
    await dir.sync();
  } catch {
    // Directories cannot be opened or fsynced on every platform; the rename is still atomic.
  } finally {
    dir?.close();
  }
}

/** fsyncs every file under `dir` (recursively) and the directories themselves. */
export async function syncTree(dir: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) {
      await syncTree(path);
    } else if (entry.isFile) {
      const file = await Deno.open(path, { read: true, write: true });
      try {
        await file.syncData();
      } finally {
        file.close();
      }
    }
  }
  await syncDir(dir);
}

/** A temporary name beside `path`, unique to this process and call. */
function temporaryPath(path: string): string {
  const random = Array.from(
    crypto.getRandomValues(new Uint8Array(4)),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
  return join(dirname(path), `.${basename(path)}.tmp-${Deno.pid}-${counter++}-${random}`);
}

/**
 * `error`, met while writing `path`, as an error of the same class (so `instanceof
 * Deno.errors.NotFound` and the like still hold) with the same `code` (`ENOSPC`, ...), whose
 * message names `path`; `cause` is the original.
 */
function writeError(error: unknown, path: string): Error {
  const text = error instanceof Error ? error.message : String(error);
  const message = `${path}: could not be written: ${text.split("\n")[0]}`;
  const Kind = error instanceof Error
    ? error.constructor as new (message: string, options: { cause: unknown }) => Error
    : Error;
  const wrapped = new Kind(message, { cause: error });
  const code = error && typeof error === "object" && "code" in error ? error.code : undefined;
  if (code !== undefined) Object.defineProperty(wrapped, "code", { value: code });
  return wrapped;
}

/**
 * Replaces `path` with `data` atomically (temp file + fsync + rename + directory fsync). The
 * temporary file (`.NAME.tmp-PID-N-RANDOM`, beside `path`) is removed on every failure, and the
 * error thrown names `path` and keeps the system error's class and `code` (e.g. `ENOSPC`).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const temp = temporaryPath(path);
  let created = false;
  try {
    const file = await Deno.open(temp, { write: true, createNew: true });
    created = true;
    try {
      await writeAll(file, bytes);
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (error) {
    if (created) await Deno.remove(temp).catch(() => {});
    throw writeError(error, path);
  }
  await syncDir(dirname(path));
}

/** `JSON.stringify(value, null, 2)` written atomically, with a final newline. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Parsed JSON of `path`, or undefined when the file does not exist. */
export async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}
