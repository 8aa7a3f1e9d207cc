/**
 * CPU time of this process's threads, from Linux's `/proc/self/task/<tid>/stat`: which thread a
 * training step's cores go to. On a software adapter (llvmpipe) the "GPU" is the driver's threads
 * in this process (lavapipe's queue thread and llvmpipe's compute threads), so the JavaScript
 * thread, the driver's threads and V8's helpers all share the same cores.
 *
 * @module
 */

/** Clock ticks per second of `/proc` times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** One thread's name and CPU time (user + system), from its `/proc/.../stat` line. */
export interface TaskTimes {
  /** The thread's name (`comm`). */
  name: string;
  /** User plus system CPU time, in milliseconds. */
  ms: number;
}

/**
 * Parses a `/proc/<pid>/task/<tid>/stat` line: the name is between the first "(" and the last ")"
 * (it may hold spaces and parentheses); utime and stime are the 14th and 15th fields.
 */
export function parseTaskStat(text: string): TaskTimes {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) throw new Error(`parseTaskStat: not a stat line: ${text}`);
  // Fields after the name start at field 3 (state); utime is field 14, stime field 15.
  const fields = text.slice(close + 2).trim().split(/\s+/);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new Error(`parseTaskStat: no utime and stime in: ${text}`);
  }
  return { name: text.slice(open + 1, close), ms: (utime + stime) * 1000 / TICKS_PER_SECOND };
}

/** CPU time of each thread of this process by thread id; null where `/proc` cannot be read. */
export function threadTimes(): Map<number, TaskTimes> | null {
  const times = new Map<number, TaskTimes>();
  try {
    for (const entry of Deno.readDirSync("/proc/self/task")) {
      const tid = Number(entry.name);
      try {
        times.set(tid, parseTaskStat(Deno.readTextFileSync(`/proc/self/task/${tid}/stat`)));
      } catch (error) {
        // A thread that ended between the listing and the read.
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotCapable) {
      return null;
    }
    throw error;
  }
  return times;
}

/**
 * The id of the thread running this JavaScript (from `/proc/thread-self`; under `deno test` it is
 * not the process's first thread); null where that cannot be read.
 */
export function javascriptThreadId(): number | null {
  try {
    const tid = Number(Deno.readLinkSync("/proc/thread-self").split("/").pop());
    return Number.isInteger(tid) ? tid : null;
  } catch {
    return null;
  }
}

/** A thread's CPU time over a run, per step. */
export interface ThreadShare {
  tid: number;
  name: string;
  /** Whether it is the thread running this JavaScript. */
  main: boolean;
  /** CPU milliseconds per step. */
  msPerStep: number;
}

/**
 * Each thread's CPU time between two `threadTimes()` readings, per step, busiest first (threads
 * that started in between count from 0; those that ended are left out).
 */
export function threadShares(
  before: ReadonlyMap<number, TaskTimes>,
  after: ReadonlyMap<number, TaskTimes>,
  steps: number,
): ThreadShare[] {
  const javascript = javascriptThreadId();
  const shares: ThreadShare[] = [];
  for (const [tid, { name, ms }] of after) {
    const spent = ms - (before.get(tid)?.ms ?? 0);
    shares.push({ tid, name, main: tid === javascript, msPerStep: spent / steps });
  }
  return shares.sort((a, b) => b.msPerStep - a.msPerStep);
}
