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

/** The lock file that a live run holds in its folder. */
export const LOCK_FILE = ".wgtorch-run.lock";

/** Files whose presence means a folder holds a run of ours (resume it with `--resume`). */
const RUN_MARKERS = [
  "command.json",
  "tune.json",
  "summary.json",
  "history.json",
  "trials.json",
  "experiment.json",
];

/** What the lock file holds. */
interface LockInfo {
  /** The command that holds the folder. */
  command: string;
  /** Its process id. */
  pid: number;
  /** Its host. */
  host: string;
  /** Its start time in clock ticks since boot (Linux `/proc/<pid>/stat`), against pid reuse. */
  procStart?: string;
  /** When it claimed the folder (ISO 8601). */
  claimed: string;
}

/** A run folder claimed by this process; `release()` removes the lock (idempotent). */
export interface RunDirClaim {
  /** The folder. */
  readonly dir: string;
  /** Removes the lock file if it is still ours. */
  release(): void;
}

/** Claims that this process still holds, released on a forced exit (second Ctrl-C). */
const held = new Set<RunDirClaim>();

/** Releases every folder this process holds (before `Deno.exit`). */
export function releaseAllClaims(): void {
  for (const claim of [...held]) claim.release();
}

/** The start time of process `pid` in clock ticks since boot (Linux), else undefined. */
function processStart(pid: number | "self"): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Field 22; the command name (field 2, in parentheses) may hold spaces.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/**
 * Whether the run that wrote `lock` may still be alive. Only a process of this host whose pid is
 * gone (or reused by another process) counts as dead; any doubt counts as alive.
 */
function mayBeAlive(lock: LockInfo): boolean {
  if (lock.host !== Deno.hostname() || Deno.build.os !== "linux") return true;
  if (processStart("self") === undefined) return true;
  const start = processStart(lock.pid);
  return start !== undefined && (lock.procStart === undefined || start === lock.procStart);
}

function readLock(path: string): LockInfo | undefined {
  try {
    const lock = JSON.parse(Deno.readTextFileSync(path));
    return typeof lock?.pid === "number" && typeof lock?.host === "string" ? lock : undefined;
  } catch {
    return undefined;
  }
}

/** Creates `path` only if it does not exist; false when it does. */
function createExclusive(path: string, text: string): boolean {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { write: true, createNew: true });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    throw error;
  }
  try {
    const bytes = new TextEncoder().encode(text);
    let offset = 0;
    while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
    file.syncDataSync();
  } finally {
    file.close();
  }
  return true;
}

/**
 * Removes the lock at `path` if it still is the stale `stale` (same pid and claim time); a
 * takeover file keeps two processes from replacing each other's fresh lock.
 */
function removeStaleLock(path: string, stale: LockInfo): boolean {
  const takeover = `${path}.takeover`;
  if (!createExclusive(takeover, String(Deno.pid))) return false;
  try {
    const now = readLock(path);
    if (now && now.pid === stale.pid && now.claimed === stale.claimed) Deno.removeSync(path);
    return true;
  } finally {
    Deno.removeSync(takeover);
  }
}

/**
 * Claims `dir` (which exists) for this process with an exclusive create of `dir/.wgtorch-run.lock`
 * holding the pid, host and start time. A lock whose process has died on this host is taken
 * over; a live (or unknown) one is refused with a `UsageError` that names it.
 */
export function claimRunDir(command: string, dir: string): RunDirClaim {
  const path = join(dir, LOCK_FILE);
  const info: LockInfo = {
    command,
    pid: Deno.pid,
    host: Deno.hostname(),
    procStart: processStart("self"),
    claimed: new Date().toISOString(),
  };
  const text = JSON.stringify(info) + "\n";
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createExclusive(path, text)) {
      const claim: RunDirClaim = {
        dir,
        release() {
          if (!held.delete(claim)) return;
          const now = readLock(path);
          if (now?.pid === info.pid && now.claimed === info.claimed) {
            try {
              Deno.removeSync(path);
            } catch { /* already gone */ }
          }
        },
      };
      held.add(claim);
      return claim;
    }
    const lock = readLock(path);
    if (lock && !mayBeAlive(lock)) {
      removeStaleLock(path, lock);
      continue;
    }
    const who = lock
      ? `a live "${lock.command}" run (pid ${lock.pid} on ${lock.host}, since ${lock.claimed})`
      : "another run (its lock is being written or unreadable)";
    throw new UsageError(
      `${command}: ${dir} is in use by ${who}; wait for it to end or choose another folder ` +
        `(if no such run is alive, delete ${path})`,
    );
  }
  throw new UsageError(
    `${command}: ${dir}: could not claim ${path}; try again (if ${path}.takeover is left from ` +
      "a crashed run, delete it)",
  );
}

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/**
 * The output folder, claimed (see `claimRunDir`): `out` if given, else a new
 * `results/<command>/<timestamp>` (a unique name: `-2`, `-3`... by exclusive mkdir). A given
 * `out` must be new or empty, unless `overwrite` allows writing our files into it beside others;
 * a folder that holds a run of ours is always refused (resume it with `--resume`).
 */
export async function prepareOutDir(
  command: string,
  out: string | undefined,
  options: { overwrite?: boolean } = {},
): Promise<RunDirClaim> {
  if (out === undefined) {
    const parent = join("results", command);
    await Deno.mkdir(parent, { recursive: true });
    const base = join(parent, timestamp());
    for (let n = 1;; n++) {
      const dir = n === 1 ? base : `${base}-${n}`;
      try {
        await Deno.mkdir(dir);
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) continue;
        throw error;
      }
      return claimRunDir(command, dir);
    }
  }
  await makeOutDir(command, out);
  const claim = claimRunDir(command, out);
  try {
    const found = (await entries(out)).filter((name) => name !== LOCK_FILE);
    const marker = RUN_MARKERS.find((name) => found.includes(name));
    if (marker) {
      throw new UsageError(
        `${command}: --out ${out} already holds a run (${marker}); continue it with ` +
          `--resume ${out}, or choose another folder`,
      );
    }
    if (found.length > 0 && !options.overwrite) {
      const shown = found.slice(0, 3).join(", ") + (found.length > 3 ? ", ..." : "");
      throw new UsageError(
        `${command}: --out ${out} is not empty (${found.length} entries: ${shown}) and holds no ` +
          "run of ours; choose a new or empty folder, or pass --overwrite to write our files " +
          "beside them (files with our names are replaced, others kept)",
      );
    }
    return claim;
  } catch (error) {
    claim.release();
    throw error;
  }
}

/**
 * Creates `--out DIR` (parents included); a path that lies under a file, or cannot be created
 * (read-only, no permission), is a `UsageError` naming the flag.
 */
export async function makeOutDir(command: string, out: string): Promise<void> {
  const fail = (why: string) => new UsageError(`${command}: --out ${out}: ${why}`);
  const isFile = await Deno.stat(out).then((info) => !info.isDirectory, () => false);
  if (isFile) {
    throw new UsageError(`${command}: --out ${out} is a file; expected a new or empty folder`);
  }
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
