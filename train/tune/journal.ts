/**
 * The append-only event journal (`journal.jsonl` in the run directory): one JSON object per line,
 * each line written in one call and fsynced before the runner acts on it. Resume replays it
 * through a fresh scheduler, so every past decision is remade identically.
 *
 * A crash can leave the last line torn (no final newline, or garbage). Reading drops such a tail;
 * {@linkcode Journal.open} also truncates it so that new lines start clean. A bad line anywhere
 * else is corruption and throws. Non-finite metric values are stored as the strings `"NaN"`,
 * `"Infinity"` and `"-Infinity"` (JSON has no such numbers).
 *
 * @module
 */

import { dirname } from "node:path";
import { syncDir, writeAll } from "./fs_atomic.ts";
import { decodeMetrics, encodeMetrics, type MetricsJson } from "./metrics.ts";
import type { Decision, Metrics } from "./types.ts";

/** A trial took a concurrency slot (its trainable started for the first time). */
export interface JournalStart {
  /** Event kind. */
  type: "start";
  /** Trial id. */
  trial: string;
  /** The slot, 0..maxConcurrent-1. */
  slot: number;
}

/** A trial reported a result and the scheduler decided. */
export interface JournalResult {
  /** Event kind. */
  type: "result";
  /** Trial id. */
  trial: string;
  /** The full result, `training_iteration` and times included. */
  result: Metrics;
  /** The scheduler's decision. */
  decision: Decision;
}

/** A trial's trainable returned (TERMINATED) or threw (ERROR) without being stopped. */
export interface JournalEnd {
  /** Event kind. */
  type: "end";
  /** Trial id. */
  trial: string;
  /** How it ended. */
  status: "TERMINATED" | "ERROR";
  /** The error message, for ERROR. */
  error?: string;
  /** The trial's running time in seconds. */
  seconds: number;
}

/**
 * A shared study's running trial lost its worker (lease expired) and another worker took it over
 * (attempt `attempt`), resuming from the checkpoint of iteration `from` (0: from scratch).
 */
export interface JournalReclaim {
  /** Event kind. */
  type: "reclaim";
  /** Trial id. */
  trial: string;
  /** The new attempt (fencing token). */
  attempt: number;
  /** The iteration resumed from. */
  from: number;
  /** The worker taking it over. */
  worker: string;
}

/** One journal line. */
export type JournalEvent = JournalStart | JournalResult | JournalEnd | JournalReclaim;

/** One event as its journal line (without the newline): NaN and ±Infinity spelled as strings. */
export function encodeEvent(event: JournalEvent): string {
  const line = event.type === "result" ? { ...event, result: encodeMetrics(event.result) } : event;
  return JSON.stringify(line);
}

/** The inverse of {@linkcode encodeEvent}. */
export function decodeEvent(text: string): JournalEvent {
  const event = JSON.parse(text) as JournalEvent;
  if (event === null || typeof event !== "object" || typeof event.type !== "string") {
    throw new Error(`journal: not an event: ${text.slice(0, 200)}`);
  }
  return event.type === "result"
    ? { ...event, result: decodeMetrics(event.result as unknown as MetricsJson) }
    : event;
}

/** Journal lines parsed from `bytes`, and how many leading bytes they span (the torn tail excluded). */
export function parseJournal(bytes: Uint8Array): { events: JournalEvent[]; validBytes: number } {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const events: JournalEvent[] = [];
  let start = 0, validBytes = 0;
  while (start < bytes.length) {
    const newline = bytes.indexOf(10, start);
    const end = newline < 0 ? bytes.length : newline;
    let event: JournalEvent | undefined;
    try {
      const text = decoder.decode(bytes.subarray(start, end)).trim();
      if (text !== "" || newline < 0) event = JSON.parse(text);
      if (event !== undefined && (typeof event !== "object" || typeof event.type !== "string")) {
        event = undefined;
        throw new Error("not an event");
      }
    } catch (error) {
      if (isTail(bytes, newline)) break;
      throw new Error(`journal corrupt at byte ${start}: ${(error as Error).message}`);
    }
    if (newline < 0) break; // a complete JSON value without its newline: still a torn write
    if (event?.type === "result") {
      event = { ...event, result: decodeMetrics(event.result as unknown as MetricsJson) };
    }
    if (event !== undefined) events.push(event);
    start = newline + 1;
    validBytes = start;
  }
  return { events, validBytes };
}

/** True when nothing but whitespace or NUL bytes follows the line ending at `newline`. */
function isTail(bytes: Uint8Array, newline: number): boolean {
  if (newline < 0) return true;
  for (let i = newline + 1; i < bytes.length; i++) {
    if (![0, 9, 10, 13, 32].includes(bytes[i])) return false;
  }
  return true;
}

/** Every complete event of the journal at `path` (none if the file does not exist). */
export async function readJournal(path: string): Promise<JournalEvent[]> {
  try {
    return parseJournal(await Deno.readFile(path)).events;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/** An open journal, appending fsynced lines. */
export class Journal {
  readonly #file: Deno.FsFile;
  readonly #encoder = new TextEncoder();

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /**
   * Opens (creating) the journal at `path`, drops a torn tail, and returns it with the events
   * already in it.
   */
  static async open(path: string): Promise<{ journal: Journal; events: JournalEvent[] }> {
    const handle = await Deno.open(path, { read: true, write: true, create: true });
    try {
      const bytes = await Deno.readFile(path);
      const { events, validBytes } = parseJournal(bytes);
      if (validBytes < bytes.length) {
        await handle.truncate(validBytes);
        await handle.syncData();
      }
      await handle.seek(validBytes, Deno.SeekMode.Start);
      await syncDir(dirname(path));
      return { journal: new Journal(handle), events };
    } catch (error) {
      handle.close();
      throw error;
    }
  }

  /** Appends one event as a line and fsyncs it. */
  async append(event: JournalEvent): Promise<void> {
    const line = event.type === "result"
      ? { ...event, result: encodeMetrics(event.result) }
      : event;
    await writeAll(this.#file, this.#encoder.encode(JSON.stringify(line) + "\n"));
    await this.#file.syncData();
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}
