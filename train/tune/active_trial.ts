/**
 * A running trial: its trainable's promise, its session, and the mailbox through which its
 * reports and its end reach the runner. Reports wait in the mailbox until the runner has
 * processed them (saved the checkpoint, asked the scheduler, journaled the decision), so the
 * runner alone decides the order in which results count.
 *
 * @module
 */

import { checkMetrics } from "./metrics.ts";
import {
  type ReportOptions,
  type Trainable,
  type TrialCheckpoint,
  type TrialSession,
  TrialStopped,
} from "./session.ts";
import type { Config, Metrics } from "./types.ts";

/** A report waiting for the runner. */
export interface ReportEvent {
  /** Event kind. */
  kind: "report";
  /** The metrics as reported (copied). */
  metrics: Metrics;
  /** The report's options. */
  options: ReportOptions;
  /** The trial's running time when it reported, in seconds. */
  totalSeconds: number;
  /** Answers the trainable: true to go on. */
  resolve(go: boolean): void;
  /** Fails the trainable's `report` call. */
  reject(error: unknown): void;
}

/** The trainable settled. */
export interface EndEvent {
  /** Event kind. */
  kind: "end";
  /** What it threw, if it threw. */
  error?: unknown;
  /** True when it threw. */
  failed: boolean;
}

/** What the runner takes from a trial's mailbox. */
export type TrialEvent = ReportEvent | EndEvent;

/** How to start a trial. */
export interface ActiveTrialInit {
  /** Trial id. */
  id: string;
  /** Its config. */
  config: Config;
  /** Its directory. */
  trialDir: string;
  /** Its concurrency slot. */
  slot: number;
  /** Iterations already done (the restore point's iteration, or 0). */
  iteration: number;
  /** The checkpoint to resume from, if any. */
  checkpoint: TrialCheckpoint | undefined;
  /** Seconds already spent before this start (resume). */
  baseSeconds: number;
}

/** A trial whose trainable is running. */
export class ActiveTrial {
  /** Trial id. */
  readonly id: string;
  /** Its concurrency slot. */
  readonly slot: number;
  /** Its directory. */
  readonly trialDir: string;
  /** Iterations processed (restored ones included). */
  iteration: number;
  /** Settles when the trainable has settled (never rejects). */
  done: Promise<void> = Promise.resolve();
  readonly #init: ActiveTrialInit;
  readonly #controller = new AbortController();
  readonly #queue: TrialEvent[] = [];
  #wake: (() => void) | undefined;
  #ready: Promise<void> | undefined;
  #stopped = false;
  #aborted = false;
  #activeMs = 0;
  #resumedAt = performance.now();

  /** A trial about to start (call {@linkcode start}). */
  constructor(init: ActiveTrialInit) {
    this.#init = init;
    this.id = init.id;
    this.slot = init.slot;
    this.trialDir = init.trialDir;
    this.iteration = init.iteration;
  }

  /** Runs the trainable; its reports and its end arrive in the mailbox. */
  start(trainable: Trainable): void {
    this.#resumedAt = performance.now();
    const session = this.#session();
    this.done = (async () => {
      try {
        await trainable(this.#init.config, session);
        this.#push({ kind: "end", failed: false });
      } catch (error) {
        this.#push({ kind: "end", error, failed: true });
      }
    })();
  }

  /** Resolves once the mailbox holds an event. */
  ready(): Promise<void> {
    if (this.#queue.length > 0) return Promise.resolve();
    this.#ready ??= new Promise<void>((resolve) => this.#wake = resolve);
    return this.#ready;
  }

  /** Takes the oldest event (call after {@linkcode ready}). */
  shift(): TrialEvent {
    const event = this.#queue.shift();
    if (!event) throw new Error(`trial ${this.id}: no event`);
    return event;
  }

  /** Seconds the trainable has run so far, time spent waiting in `report` excluded. */
  seconds(): number {
    return this.#init.baseSeconds + (this.#activeMs + (performance.now() - this.#resumedAt)) / 1000;
  }

  /** The scheduler stopped the trial: later reports fail with TrialStopped. */
  markStopped(): void {
    this.#stopped = true;
    this.#controller.abort(new TrialStopped("stopped"));
  }

  /** The run is aborted: pending and later reports fail with TrialStopped. */
  abort(): void {
    this.#aborted = true;
    this.#controller.abort(new TrialStopped("aborted"));
    for (const event of this.#queue.splice(0)) {
      if (event.kind === "report") event.reject(new TrialStopped("aborted"));
      else this.#queue.push(event);
    }
  }

  #push(event: TrialEvent): void {
    if (this.#aborted && event.kind === "report") {
      event.reject(new TrialStopped("aborted"));
      return;
    }
    this.#queue.push(event);
    const wake = this.#wake;
    this.#wake = this.#ready = undefined;
    wake?.();
  }

  #session(): TrialSession {
    // deno-lint-ignore no-this-alias
    const trial = this;
    const init = this.#init;
    return {
      trialId: init.id,
      trialDir: init.trialDir,
      config: init.config,
      checkpoint: init.checkpoint,
      signal: this.#controller.signal,
      get iteration(): number {
        return trial.iteration;
      },
      report(metrics: Metrics, options: ReportOptions = {}): Promise<boolean> {
        if (trial.#aborted) return Promise.reject(new TrialStopped("aborted"));
        if (trial.#stopped) return Promise.reject(new TrialStopped("stopped"));
        try {
          checkMetrics(metrics);
        } catch (error) {
          return Promise.reject(error);
        }
        const now = performance.now();
        trial.#activeMs += now - trial.#resumedAt;
        trial.#resumedAt = now;
        const totalSeconds = init.baseSeconds + trial.#activeMs / 1000;
        return new Promise<boolean>((resolve, reject) => {
          const answered = (): void => {
            trial.#resumedAt = performance.now();
          };
          trial.#push({
            kind: "report",
            metrics: { ...metrics },
            options,
            totalSeconds,
            resolve: (go) => {
              answered();
              resolve(go);
            },
            reject: (error) => {
              answered();
              reject(error);
            },
          });
        });
      },
    };
  }
}
