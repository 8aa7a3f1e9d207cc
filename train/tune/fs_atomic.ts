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

/** Replaces `path` with `data` atomically (temp file + fsync + rename + directory fsync). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const temp = join(dirname(path), `.${basename(path)}.tmp-${Deno.pid}-${counter++}`);
  const file = await Deno.open(temp, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, bytes);
    await file.syncData();
  } finally {
    file.close();
  }
  try {
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
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
