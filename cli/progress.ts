/**
 * Training progress on stderr: on a terminal, a bar redrawn at every read of the GPU sums
 * (step/steps, images per second, running loss, ETA) and one summary line per epoch; elsewhere
 * (logs, CI) only the summary lines. The mode, the bar, the redrawn line and the ETA are the
 * library's progress parts (`data/progress.ts`), shared with the download progress.
 *
 * @module
 */

import {
  formatBar,
  formatEta,
  type ProgressMode,
  resolveProgressMode,
  StatusLine,
} from "../data/mod.ts";
import type { EpochRecord, FitProgress, StepProgress } from "../mod.ts";

export type { ProgressMode };

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text));
}

/** `1,234`. */
function formatCount(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

/** One line summing up an epoch. */
function formatEpochLine(label: string, record: EpochRecord, epochs: number): string {
  const val = record.valLoss === null
    ? ""
    : `  val loss ${record.valLoss.toFixed(4)} acc ${record.valAccuracy!.toFixed(4)}`;
  return `${label}epoch ${record.epoch}/${epochs}  train loss ${record.trainLoss.toFixed(4)} ` +
    `acc ${record.trainAccuracy.toFixed(4)}${val}  lr ${record.lr.toPrecision(3)}  ` +
    `${record.seconds.toFixed(1)}s  ${formatCount(record.imagesPerSecond)} img/s`;
}

/** The bar line for a read within an epoch. */
function formatBarLine(label: string, p: StepProgress & { epochs: number }): string {
  const bar = formatBar(p.steps > 0 ? p.step / p.steps : 0);
  const rate = p.seconds > 0 ? p.images / p.seconds : 0;
  const eta = formatEta(p.steps - p.step, p.step / p.seconds);
  return `${label}epoch ${p.epoch}/${p.epochs} ${bar} ` +
    `${p.step}/${p.steps}  ${formatCount(rate)} img/s  loss ${p.loss.toFixed(4)}  ETA ${eta}`;
}

/** Options of `TrainingProgress`. */
export interface TrainingProgressOptions {
  /** How to show progress. */
  mode: ProgressMode;
  /** Put before every line, e.g. `[cnn-bn] `. */
  label?: string;
  /** Where text goes (default stderr). */
  write?: (text: string) => void;
}

/** `fit`'s progress display (see the module notes). */
export class TrainingProgress implements FitProgress {
  /** The resolved mode. */
  readonly mode: "bar" | "lines" | "none";
  readonly #label: string;
  readonly #write: (text: string) => void;
  readonly #status: StatusLine;

  /** A display for one run. */
  constructor(options: TrainingProgressOptions) {
    this.mode = resolveProgressMode(options.mode);
    this.#label = options.label ?? "";
    this.#write = options.write ?? writeStderr;
    this.#status = new StatusLine(this.#write);
  }

  /** Nothing to show until the first read. */
  epochStart(): void {}

  /** Redraws the bar (terminal only). */
  step(progress: StepProgress & { epochs: number }): void {
    if (this.mode !== "bar") return;
    this.#status.draw(formatBarLine(this.#label, progress));
  }

  /** Replaces the bar with the epoch's summary line. */
  epochEnd(record: EpochRecord, epochs: number): void {
    if (this.mode === "none") return;
    this.line(formatEpochLine(this.#label, record, epochs));
  }

  /** Prints a whole line, clearing the bar first. */
  line(text: string): void {
    if (this.mode === "none") return;
    this.clear();
    this.#write(text + "\n");
  }

  /** Erases the bar, if one is drawn. */
  clear(): void {
    this.#status.clear();
  }
}
