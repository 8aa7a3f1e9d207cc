/**
 * Per-trial checkpoints on disk: `<trialDir>/checkpoint_000007/` holds the trainable's files and
 * `tune_checkpoint.json` (iteration, data, history). A checkpoint is written in a hidden temporary
 * directory and renamed into place, so it is either whole or absent; it counts as committed once
 * the journal holds the result of its iteration (the runner journals right after saving).
 *
 * @module
 */

import { join } from "node:path";
import { syncDir, syncTree } from "./fs_atomic.ts";
import { encodeMetrics, type MetricsJson } from "./metrics.ts";
import type { CheckpointSpec, TrialCheckpoint } from "./session.ts";
import type { Json, Metrics } from "./types.ts";

/** The file with the checkpoint's JSON state, inside each checkpoint directory. */
export const CHECKPOINT_FILE = "tune_checkpoint.json";

const NAME = /^checkpoint_(\d+)$/;
const TEMP_PREFIX = ".tmp_checkpoint_";

/** `checkpoint_000007` for iteration 7. */
export function checkpointName(iteration: number): string {
  return `checkpoint_${String(iteration).padStart(6, "0")}`;
}

/** The state stored in `tune_checkpoint.json`. */
export interface CheckpointState {
  /** The iteration saved. */
  iteration: number;
  /** The trainable's JSON data. */
  data: Json;
  /** The trial's results up to this iteration. */
  history: MetricsJson[];
}

/**
 * Saves iteration `iteration`'s checkpoint of a trial: `spec.save` fills a temporary directory,
 * the state file is written, and the directory is renamed to `checkpoint_<iteration>`. Returns
 * the committed checkpoint's description.
 */
export async function saveCheckpoint(
  trialDir: string,
  iteration: number,
  options: { spec: CheckpointSpec; history: Metrics[] },
): Promise<TrialCheckpoint> {
  const name = checkpointName(iteration);
  const temp = join(trialDir, `${TEMP_PREFIX}${name.slice("checkpoint_".length)}`);
  await Deno.remove(temp, { recursive: true }).catch(() => {});
  await Deno.mkdir(temp, { recursive: true });
  await options.spec.save?.(temp);
  const data = options.spec.data ?? null;
  const state: CheckpointState = { iteration, data, history: options.history.map(encodeMetrics) };
  await Deno.writeTextFile(join(temp, CHECKPOINT_FILE), JSON.stringify(state, null, 2) + "\n");
  await syncTree(temp); // the trainable's files too: durable before the rename publishes them
  const target = join(trialDir, name);
  await Deno.remove(target, { recursive: true }).catch(() => {});
  await Deno.rename(temp, target);
  await syncDir(trialDir);
  return { iteration, data, dir: target };
}

/** The committed-or-not checkpoints of a trial, by ascending iteration. */
export async function listCheckpoints(
  trialDir: string,
): Promise<{ iteration: number; dir: string }[]> {
  const found: { iteration: number; dir: string }[] = [];
  try {
    for await (const entry of Deno.readDir(trialDir)) {
      const match = entry.isDirectory ? NAME.exec(entry.name) : null;
      if (match) found.push({ iteration: Number(match[1]), dir: join(trialDir, entry.name) });
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found.sort((a, b) => a.iteration - b.iteration);
}

/** Reads a checkpoint directory back. */
export async function loadCheckpoint(dir: string): Promise<TrialCheckpoint> {
  const state = JSON.parse(await Deno.readTextFile(join(dir, CHECKPOINT_FILE))) as CheckpointState;
  return { iteration: state.iteration, data: state.data, dir };
}

/**
 * Removes a trial's temporary directories and every checkpoint except `keep` (iterations above
 * `keep` are uncommitted leftovers of a crash; those below are superseded).
 */
export async function pruneCheckpoints(trialDir: string, keep: number | undefined): Promise<void> {
  try {
    for await (const entry of Deno.readDir(trialDir)) {
      const match = NAME.exec(entry.name);
      const stale = entry.name.startsWith(TEMP_PREFIX) ||
        (match !== null && Number(match[1]) !== keep);
      if (stale) await Deno.remove(join(trialDir, entry.name), { recursive: true });
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/**
 * The checkpoint to resume a trial from: the newest one at or below `journaled` (the last
 * iteration the journal committed), after deleting anything newer or temporary.
 */
export async function restorePoint(
  trialDir: string,
  journaled: number,
): Promise<TrialCheckpoint | undefined> {
  const candidates = (await listCheckpoints(trialDir)).filter((c) => c.iteration <= journaled);
  const newest = candidates.at(-1);
  let restored: TrialCheckpoint | undefined;
  if (newest) {
    try {
      restored = await loadCheckpoint(newest.dir);
    } catch {
      restored = undefined; // unreadable: restart the trial from scratch (journal replays it)
    }
  }
  await pruneCheckpoints(trialDir, restored?.iteration);
  return restored;
}
