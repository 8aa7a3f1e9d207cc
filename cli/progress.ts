/**
 * Training progress on stderr: on a terminal, a bar redrawn at every read of the GPU sums
 * (step/steps, images per second, running loss, ETA) and one summary line per epoch; elsewhere
 * (logs, CI) only the summary lines.
 *
 * @module
 */

import { formatDuration } from "../data/progress.ts";
import type { FitProgress, StepProgress } from "../train/fit.ts";
import type { EpochRecord } from "../train/history.ts";

/** How progress is shown (`auto`: a bar on a terminal, lines otherwise). */
export type ProgressMode = "auto" | "bar" | "lines" | "none";

const encoder = new TextEncoder();

/** Writes to stderr without a newline. */
function writeStderr(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text));
}

/** `bar` when stderr is a terminal, else `lines`, for `auto`; other modes as they are. */
function resolveMode(mode: ProgressMode): "bar" | "lines" | "none" {
  if (mode !== "auto") return mode;
  try {
    return Deno.stderr.isTerminal() ? "bar" : "lines";
  } catch {
    return "lines";
  }
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
function formatBarLine(
  label: string,
  p: StepProgress & { epochs: number },
  width = 24,
): string {
  const fraction = p.steps > 0 ? Math.min(1, p.step / p.steps) : 0;
  const filled = Math.round(fraction * width);
  const rate = p.seconds > 0 ? p.images / p.seconds : 0;
  const eta = p.step > 0 ? formatDuration((p.steps - p.step) * p.seconds / p.step) : "?";
  return `${label}epoch ${p.epoch}/${p.epochs} [${"#".repeat(filled)}${
    ".".repeat(width - filled)
  }] ` +
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
  #drawn = 0;

  /** A display for one run. */
  constructor(options: TrainingProgressOptions) {
    this.mode = resolveMode(options.mode);
    this.#label = options.label ?? "";
    this.#write = options.write ?? writeStderr;
  }

  /** Nothing to show until the first read. */
  epochStart(): void {}

  /** Redraws the bar (terminal only). */
  step(progress: StepProgress & { epochs: number }): void {
    if (this.mode !== "bar") return;
    const line = formatBarLine(this.#label, progress);
    this.#write(`\r${line}${" ".repeat(Math.max(0, this.#drawn - line.length))}`);
    this.#drawn = line.length;
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
    if (this.#drawn > 0) {
      this.#write(`\r${" ".repeat(this.#drawn)}\r`);
      this.#drawn = 0;
    }
  }
}
