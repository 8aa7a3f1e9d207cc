/**
 * `tune()`: runs a trainable over sampled configs under a scheduler, `maxConcurrent` trials at a
 * time, with per-epoch checkpoints, a journal of every decision, and exact resume.
 *
 * Run directory layout:
 *
 * | path | holds |
 * | --- | --- |
 * | `experiment.json` | settings, search space and every trial's config (written first) |
 * | `journal.jsonl` | one fsynced line per event: start, result + decision, end |
 * | `trials.json`, `trials.csv` | the result grid, rewritten atomically every 2 s and at the end |
 * | `<trial>/params.json` | the trial's config |
 * | `<trial>/checkpoint_NNNNNN/` | its latest committed checkpoint (files + `tune_checkpoint.json`) |
 *
 * **Processing a report** (one at a time, in the runner): save the checkpoint (temporary
 * directory, renamed into place), ask the scheduler, append the decision to the journal (the
 * commit point), drop older checkpoints, answer the trainable. A crash before the journal line
 * leaves an uncommitted checkpoint that resume deletes; after it, the result counts.
 *
 * **Ordering.** With `maxConcurrent` 1 there is one order. With more, `ordering: "deterministic"`
 * (default) processes the slots' events round-robin (slot 0's next event, then slot 1's...), so
 * the scheduler sees the same sequence whatever the timing, at the cost of a fast trial waiting
 * for slower ones at each report; `"arrival"` processes events as they come (faster, but ASHA's
 * decisions then depend on timing, as in Ray).
 *
 * **Resume** (`resume: true`): reads `experiment.json` (same configs, settings, scheduler),
 * replays the journal through a fresh scheduler (every decision must come out the same, else it
 * throws), restarts each unfinished trial in its slot from its latest committed checkpoint
 * (`session.checkpoint`, `session.iteration`), and continues the round-robin after the last
 * journaled event. Guarantee: decisions before the stop are identical; with deterministic
 * trainables and `maxConcurrent` 1 or deterministic ordering, the final table (configs,
 * statuses, iterations, metrics) is that of an uninterrupted run. A trainable that saves no
 * checkpoint restarts from scratch; its already-journaled reports are answered from the journal
 * (their new metrics are ignored) until it passes its last journaled iteration.
 *
 * @module
 */

import { join } from "node:path";
import { ActiveTrial, type EndEvent, type ReportEvent, type TrialEvent } from "./active_trial.ts";
import { listCheckpoints, pruneCheckpoints, restorePoint, saveCheckpoint } from "./checkpoints.ts";
import { writeFileAtomic, writeJsonAtomic } from "./fs_atomic.ts";
import { tuneShared } from "./distributed.ts";
import type { ExperimentSpec } from "./experiment.ts";
import { Journal } from "./journal.ts";
import type { ResultGrid } from "./result_grid.ts";
import { RunState, type TrialRecord } from "./run_state.ts";
import { JOURNAL_FILE, prepareSpec } from "./run_setup.ts";
import { endingOf, progressOf, resultOf, waitForEnd } from "./run_common.ts";
import type { TrialCheckpoint } from "./session.ts";
import type { TuneOptions } from "./tune_options.ts";
import type { Decision } from "./types.ts";

export type { StorageEvent, TuneOptions, TuneProgress } from "./tune_options.ts";

/** trials.json/csv are rewritten at most this often while running (and always at the end). */
const RESULTS_INTERVAL_MS = 2000;

/**
 * Runs (or, with `resume`, continues) a tuning experiment and resolves to its result grid.
 * A trial that throws is recorded as ERROR and the others go on. Rejects when `signal` aborts
 * (after every running trainable has settled, with the journal consistent for resume) or on
 * an I/O error.
 *
 * @example A grid over two learning rates, FIFO (every trial runs to the end)
 * ```ts
 * import { gridSearch, tune } from "@wgtorch/wgtorch/tune";
 *
 * const grid = await tune({
 *   trainable: async (config, session) => {
 *     for (let epoch = session.iteration; epoch < 3; epoch++) {
 *       await session.report({ loss: Number(config.lr) / (epoch + 1) });
 *     }
 *   },
 *   paramSpace: { lr: gridSearch([0.1, 0.01]) },
 *   metric: "loss",
 *   mode: "min",
 *   dir: await Deno.makeTempDir(),
 * });
 * console.log(grid.bestResult()?.config); // { lr: 0.01 }
 * ```
 */
export async function tune(options: TuneOptions): Promise<ResultGrid> {
  if (options.storage !== undefined) return await tuneShared(options);
  const { spec, scheduler } = await prepareSpec(options);
  const { journal, events } = await Journal.open(join(options.dir, JOURNAL_FILE));
  try {
    const state = new RunState(spec, scheduler);
    for (const event of events) state.replay(event);
    const run = new Run({ options, spec, state, journal });
    return await run.execute();
  } finally {
    journal.close();
  }
}

class Run {
  readonly #options: TuneOptions;
  readonly #spec: ExperimentSpec;
  readonly #state: RunState;
  readonly #journal: Journal;
  readonly #slots: (ActiveTrial | null)[];
  readonly #started = performance.now();
  #lastWrite = -Infinity;

  constructor(
    init: { options: TuneOptions; spec: ExperimentSpec; state: RunState; journal: Journal },
  ) {
    this.#options = init.options;
    this.#spec = init.spec;
    this.#state = init.state;
    this.#journal = init.journal;
    this.#slots = new Array(init.spec.maxConcurrent).fill(null);
  }

  async execute(): Promise<ResultGrid> {
    const signal = this.#options.signal;
    signal?.throwIfAborted();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<null>((resolve) => {
      onAbort = () => resolve(null);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    try {
      await this.#restoreFinished();
      await this.#restoreRunning();
      for (let slot = 0; slot < this.#slots.length; slot++) {
        if (!this.#slots[slot] && !signal?.aborted) await this.#startNext(slot);
      }
      await this.#loop(aborted);
    } catch (error) {
      await this.#shutdown();
      await this.#writeResults().catch(() => {}); // keep the original error
      throw error;
    } finally {
      if (onAbort) signal?.removeEventListener("abort", onAbort);
    }
    await this.#shutdown();
    await this.#writeResults();
    const unfinished = this.#state.trials.some((t) =>
      t.status === "PENDING" || t.status === "RUNNING"
    );
    if (unfinished) throw signal?.reason ?? new DOMException("tune aborted", "AbortError");
    return this.#state.grid();
  }

  /** Points finished trials at their last checkpoint (for the result grid). */
  async #restoreFinished(): Promise<void> {
    for (const record of this.#state.trials) {
      if (record.status === "PENDING" || record.status === "RUNNING") continue;
      record.checkpointDir = (await listCheckpoints(this.#trialDir(record))).at(-1)?.dir;
    }
  }

  /** Restarts the trials that were running when the run stopped, each in its slot. */
  async #restoreRunning(): Promise<void> {
    for (const record of this.#state.trials) {
      if (record.status !== "RUNNING") continue;
      const slot = record.slot ?? -1;
      if (!(slot >= 0 && slot < this.#slots.length) || this.#slots[slot]) {
        throw new Error(`resume: trial ${record.id} has slot ${slot}, which is invalid or taken`);
      }
      const checkpoint = await restorePoint(this.#trialDir(record), record.history.length);
      record.checkpointDir = checkpoint?.dir;
      await this.#prepareDir(record);
      this.#launch(record, slot, checkpoint);
    }
  }

  async #startNext(slot: number): Promise<void> {
    const record = this.#state.nextPending();
    if (!record) return;
    this.#state.start(record.id, slot);
    await this.#journal.append({ type: "start", trial: record.id, slot });
    // Leftovers of a crash before the start was journaled are not committed.
    await pruneCheckpoints(this.#trialDir(record), undefined);
    await this.#prepareDir(record);
    this.#launch(record, slot, undefined);
  }

  async #prepareDir(record: TrialRecord): Promise<void> {
    const dir = this.#trialDir(record);
    await Deno.mkdir(dir, { recursive: true });
    await writeJsonAtomic(join(dir, "params.json"), record.config);
  }

  #launch(record: TrialRecord, slot: number, checkpoint: TrialCheckpoint | undefined): void {
    const iteration = checkpoint?.iteration ?? 0;
    const active = new ActiveTrial({
      id: record.id,
      config: structuredClone(record.config),
      trialDir: this.#trialDir(record),
      slot,
      iteration,
      checkpoint,
      baseSeconds: iteration > 0 ? record.history[iteration - 1]?.time_total_s ?? 0 : 0,
    });
    this.#slots[slot] = active;
    active.start(this.#options.trainable);
  }

  async #loop(aborted: Promise<null>): Promise<void> {
    const deterministic = this.#spec.ordering === "deterministic";
    const count = this.#slots.length;
    let pointer = ((this.#state.lastSlot ?? -1) + 1) % count;
    while (true) {
      const live = this.#slots.filter((s): s is ActiveTrial => s !== null);
      if (live.length === 0) return;
      let active: ActiveTrial | null;
      if (deterministic) {
        while (!this.#slots[pointer]) pointer = (pointer + 1) % count;
        const candidate = this.#slots[pointer]!;
        active = await Promise.race([candidate.ready().then(() => candidate), aborted]);
      } else {
        active = await Promise.race([...live.map((a) => a.ready().then(() => a)), aborted]);
      }
      if (active === null || this.#options.signal?.aborted) {
        return;
      }
      const event = active.shift();
      const decision = await this.#process(active, event);
      pointer = (active.slot + 1) % count;
      if (performance.now() - this.#lastWrite >= RESULTS_INTERVAL_MS) await this.#writeResults();
      this.#progress(active, event, decision);
    }
  }

  async #process(active: ActiveTrial, event: TrialEvent): Promise<Decision | undefined> {
    if (event.kind === "end") {
      await this.#end(active, event);
      return undefined;
    }
    return await this.#report(active, event);
  }

  async #report(active: ActiveTrial, event: ReportEvent): Promise<Decision | undefined> {
    const record = this.#state.get(active.id);
    const iteration = active.iteration + 1;
    const spec = event.options.checkpoint;
    if (iteration <= record.history.length) {
      // Resumed without a checkpoint this recent: the journal already decided this iteration.
      if (spec) {
        try {
          const saved = await saveCheckpoint(active.trialDir, iteration, {
            spec,
            history: record.history.slice(0, iteration),
          });
          record.checkpointDir = saved.dir;
          await pruneCheckpoints(active.trialDir, iteration);
        } catch (error) {
          event.reject(error);
          return undefined;
        }
      }
      active.iteration = iteration;
      event.resolve(true);
      return "CONTINUE";
    }
    const result = resultOf(event, iteration, record.history);
    let saved: TrialCheckpoint | undefined;
    if (spec) {
      try {
        saved = await saveCheckpoint(active.trialDir, iteration, {
          spec,
          history: [...record.history, result],
        });
      } catch (error) {
        event.reject(error); // not journaled: the trainable sees the error (and probably fails)
        return undefined;
      }
    }
    const decision = this.#state.result(active.id, result);
    await this.#journal.append({ type: "result", trial: active.id, result, decision });
    active.iteration = iteration;
    if (saved) {
      record.checkpointDir = saved.dir;
      await pruneCheckpoints(active.trialDir, iteration);
    }
    if (decision === "CONTINUE") {
      event.resolve(true);
      return decision;
    }
    active.markStopped();
    event.resolve(false);
    // Wait for the trainable to return (it frees its GPU memory) before reusing the slot.
    await waitForEnd(active);
    await this.#release(active);
    return decision;
  }

  async #end(active: ActiveTrial, event: EndEvent): Promise<void> {
    const ending = endingOf(active, event);
    this.#state.end(active.id, ending);
    await this.#journal.append({ type: "end", trial: active.id, ...ending });
    await this.#release(active);
  }

  async #release(active: ActiveTrial): Promise<void> {
    this.#slots[active.slot] = null;
    if (!this.#options.signal?.aborted) await this.#startNext(active.slot);
  }

  /** Aborts whatever still runs and waits for every trainable to settle. */
  async #shutdown(): Promise<void> {
    const live = this.#slots.filter((s): s is ActiveTrial => s !== null);
    if (live.length === 0) return;
    for (const active of live) active.abort();
    await Promise.all(live.map((a) => a.done));
    this.#slots.fill(null);
  }

  #trialDir(record: TrialRecord): string {
    return join(this.#options.dir, record.id);
  }

  async #writeResults(): Promise<void> {
    this.#lastWrite = performance.now();
    const grid = this.#state.grid();
    await writeJsonAtomic(join(this.#options.dir, "trials.json"), grid);
    await writeFileAtomic(join(this.#options.dir, "trials.csv"), grid.toCSV());
  }

  #progress(active: ActiveTrial, event: TrialEvent, decision: Decision | undefined): void {
    this.#options.onProgress?.(progressOf(this.#state, active, event, decision, this.#started));
  }
}
