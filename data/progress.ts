/**
 * Progress on stderr: a redrawn bar on a terminal, plain lines otherwise (logs, CI). The parts
 * every progress display shares (the mode and terminal detection, the bar, the redrawn status
 * line, durations, ETAs and byte counts) and the download progress built on them. The CLI's
 * training progress uses the same parts.
 *
 * @module
 */

/** Receives the progress of one transfer at a time. */
export interface ProgressReporter {
  /**
   * A transfer of `label` begins, from `source`; `total` bytes when known; `resumeAt` bytes
   * were received before (a resumed transfer).
   */
  start(label: string, source: string, total: number | null, resumeAt?: number): void;
  /** `bytes` bytes have arrived so far in total (may go down to 0 on a restart). */
  update(bytes: number): void;
  /** The transfer ended; `note` says how (e.g. "ok", or why it failed). */
  end(ok: boolean, note: string): void;
}

/** How progress is shown: `auto` picks `bar` on a terminal and `lines` otherwise. */
export type ProgressMode = "auto" | "bar" | "lines" | "none";

/**
 * The mode to use: `auto` is `bar` when stderr is a terminal and `lines` when not (or when that
 * cannot be known, e.g. in a browser or without permissions); the others stay as they are.
 */
export function resolveProgressMode(mode: ProgressMode): "bar" | "lines" | "none" {
  if (mode !== "auto") return mode;
  try {
    return Deno.stderr.isTerminal() ? "bar" : "lines";
  } catch {
    return "lines";
  }
}

/** A bar of `width` characters, `fraction` (clamped to [0, 1]) of them filled: `[####......]`. */
export function formatBar(fraction: number, width = 24): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}

/** Time left for `remaining` units at `rate` units per second: `formatDuration`, or `?`. */
export function formatEta(remaining: number, rate: number): string {
  return rate > 0 ? formatDuration(remaining / rate) : "?";
}

const encoder = new TextEncoder();

/** Writes `text` to stderr as it is (no newline added). */
export function writeStderr(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text));
}

/**
 * One line redrawn in place on a terminal (`\r`, padded with spaces over a longer previous
 * text), then finished with a newline or erased.
 */
export class StatusLine {
  readonly #write: (text: string) => void;
  #drawn = 0;

  /** A status line written through `write` (default: stderr). */
  constructor(write: (text: string) => void = writeStderr) {
    this.#write = write;
  }

  /** Whether something is drawn now. */
  get drawn(): boolean {
    return this.#drawn > 0;
  }

  /** Replaces the line with `text`. */
  draw(text: string): void {
    this.#write(`\r${text}${" ".repeat(Math.max(0, this.#drawn - text.length))}`);
    this.#drawn = text.length;
  }

  /** Replaces the line with `text` and ends it: the next `draw` starts a new line. */
  finish(text: string): void {
    this.#write(`\r${text}${" ".repeat(Math.max(0, this.#drawn - text.length))}\n`);
    this.#drawn = 0;
  }

  /** Erases the line, if one is drawn, and puts the cursor back at its start. */
  clear(): void {
    if (this.#drawn === 0) return;
    this.#write(`\r${" ".repeat(this.#drawn)}\r`);
    this.#drawn = 0;
  }
}

/** Formats a byte count: `812 B`, `29.5 kB`, `26.4 MB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e9).toFixed(2)} GB`;
}

/** Formats seconds as `7s`, `2m05s` or `1h02m`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
}

/**
 * One progress bar line: `name [#####.....] 12.3 MB / 26.4 MB  5.1 MB/s  ETA 3s`, after
 * `seconds` of a transfer that started at `resumedAt` bytes (default 0).
 */
export function formatProgressLine(
  label: string,
  bytes: number,
  total: number | null,
  seconds: number,
  options: { width?: number; resumedAt?: number } = {},
): string {
  const { width = 24, resumedAt = 0 } = options;
  const rate = seconds > 0 ? (bytes - resumedAt) / seconds : 0;
  const rateText = `${formatBytes(Math.round(rate))}/s`;
  if (total === null || total <= 0) {
    return `${label} ${formatBytes(bytes)}  ${rateText}`;
  }
  const bar = formatBar(bytes / total, width);
  const eta = formatEta(total - bytes, rate);
  return `${label} ${bar} ${formatBytes(bytes)} / ${formatBytes(total)}  ${rateText}  ETA ${eta}`;
}

/** Options of `createProgress`. */
export interface ProgressOptions {
  /** How to show progress (default `auto`). */
  mode?: ProgressMode;
  /** Where text goes (default: stderr). Receives whole lines in `lines` mode. */
  write?: (text: string) => void;
  /** Clock in milliseconds (tests). */
  now?: () => number;
  /** In `lines` mode, the least time between two progress lines, in ms (default 10 s). */
  lineIntervalMs?: number;
}

/** A reporter for `mode` (default `auto`: a bar when stderr is a terminal, plain lines if not). */
export function createProgress(options: ProgressOptions = {}): ProgressReporter {
  const write = options.write ?? writeStderr;
  const now = options.now ?? (() => performance.now());
  const mode = resolveProgressMode(options.mode ?? "auto");
  if (mode === "none") return { start() {}, update() {}, end() {} };
  const interval = mode === "bar" ? 100 : options.lineIntervalMs ?? 10_000;
  const status = new StatusLine(write);
  let label = "", total: number | null = null, began = 0, last = 0, bytes = 0;
  let first = 0; // bytes already there when the transfer (re)started: not part of the rate
  const elapsed = () => (now() - began) / 1000;
  return {
    start(name, source, size, resumeAt = 0) {
      label = name;
      total = size;
      bytes = resumeAt;
      began = last = now();
      const details = [
        ...(size ? [formatBytes(size)] : []),
        ...(resumeAt > 0 ? [`resuming at ${formatBytes(resumeAt)}`] : []),
      ];
      write(`Downloading ${source}${details.length ? ` (${details.join(", ")})` : ""}\n`);
      first = resumeAt;
    },
    update(count) {
      bytes = count;
      const t = now();
      if (t - last < interval) return;
      last = t;
      const line = formatProgressLine(label, bytes, total, elapsed(), { resumedAt: first });
      if (mode === "bar") status.draw(line);
      else write(`  ${line}\n`);
    },
    end(ok, note) {
      const seconds = elapsed();
      const summary = ok
        ? `${label}: ${formatBytes(bytes - first)} in ${seconds.toFixed(1)} s ` +
          `(${formatBytes(Math.round((bytes - first) / Math.max(seconds, 1e-3)))}/s), ${note}`
        : `${label}: failed after ${formatBytes(bytes)}: ${note}`;
      if (mode === "bar") status.finish(summary);
      else write(`  ${summary}\n`);
    },
  };
}
