/**
 * What the two runners share: the local one (`runner.ts`, journal file) and a shared study's
 * worker (`distributed.ts`, PostgreSQL). Both keep a `RunState` advanced event by event, run
 * trainables as `ActiveTrial`s, and turn reports and ends into journal events the same way.
 *
 * @module
 */

import type { ActiveTrial, EndEvent, ReportEvent, TrialEvent } from "./active_trial.ts";
import type { RunState } from "./run_state.ts";
import { TrialStopped } from "./session.ts";
import type { TuneProgress } from "./tune_options.ts";
import type { Decision, Metrics } from "./types.ts";

/** An error's message (its name when empty). */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** The journaled result of a report: its metrics plus iteration and times. */
export function resultOf(event: ReportEvent, iteration: number, history: Metrics[]): Metrics {
  const previous = history.at(-1)?.time_total_s ?? 0;
  return {
    ...event.metrics,
    training_iteration: iteration,
    time_this_iter_s: Math.max(0, event.totalSeconds - previous),
    time_total_s: event.totalSeconds,
  };
}

/** How a trainable's end is journaled: TERMINATED, or ERROR when it threw (not TrialStopped). */
export function endingOf(
  active: ActiveTrial,
  event: EndEvent,
): { status: "TERMINATED" | "ERROR"; error?: string; seconds: number } {
  const failed = event.failed && !(event.error instanceof TrialStopped);
  return failed
    ? { status: "ERROR", error: errorMessage(event.error), seconds: active.seconds() }
    : { status: "TERMINATED", seconds: active.seconds() };
}

/**
 * After a STOP: waits for the trainable to return (it frees its GPU memory before its slot is
 * reused), failing any further report with TrialStopped.
 */
export async function waitForEnd(active: ActiveTrial): Promise<void> {
  while (true) {
    await active.ready();
    const next = active.shift();
    if (next.kind === "end") return;
    next.reject(new TrialStopped("stopped"));
  }
}

/** The progress after processing `event` of `active`. */
export function progressOf(
  state: RunState,
  active: ActiveTrial,
  event: TrialEvent,
  decision: Decision | undefined,
  startedMs: number,
): TuneProgress {
  const grid = state.grid();
  const id = active.id;
  const record = state.get(id);
  const best = grid.bestResult();
  const value = best?.lastResult?.[grid.metric];
  return {
    total: grid.trials.length,
    counts: grid.counts(),
    ...(best && value !== undefined
      ? { best: { trialId: best.id, value, config: best.config } }
      : {}),
    event: {
      trialId: id,
      kind: event.kind === "report" ? "result" : "end",
      ...(event.kind === "report" && decision !== undefined
        ? { iteration: active.iteration, decision }
        : {}),
      status: record.status,
      ...(record.error !== undefined ? { error: record.error } : {}),
    },
    elapsedSeconds: (performance.now() - startedMs) / 1000,
  };
}
