/**
 * Download progress on stderr: a redrawn bar (bytes, rate, ETA) on a terminal, plain lines
 * otherwise (logs, CI).
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
  const fraction = Math.min(1, bytes / total);
  const filled = Math.round(fraction * width);
  const bar = "#".repeat(filled) + ".".repeat(width - filled);
  const eta = rate > 0 ? formatDuration((total - bytes) / rate) : "?";
  return `${label} [${bar}] ${formatBytes(bytes)} / ${formatBytes(total)}  ${rateText}  ETA ${eta}`;
}

const encoder = new TextEncoder();

function stderrWriter(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text));
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
  const write = options.write ?? stderrWriter;
  const now = options.now ?? (() => performance.now());
  let mode = options.mode ?? "auto";
  if (mode === "auto") {
    let terminal = false;
    try {
      terminal = Deno.stderr.isTerminal();
    } catch { /* no terminal information */ }
    mode = terminal ? "bar" : "lines";
  }
  if (mode === "none") return { start() {}, update() {}, end() {} };
  const interval = mode === "bar" ? 100 : options.lineIntervalMs ?? 10_000;
  let label = "", total: number | null = null, began = 0, last = 0, bytes = 0, drawn = 0;
  let first = 0; // bytes already there when the transfer (re)started: not part of the rate
  const elapsed = () => (now() - began) / 1000;
  return {
    start(name, source, size, resumeAt = 0) {
      label = name;
      total = size;
      bytes = resumeAt;
      began = last = now();
      drawn = 0;
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
      if (mode === "bar") {
        write(`\r${line}${" ".repeat(Math.max(0, drawn - line.length))}`);
        drawn = line.length;
      } else write(`  ${line}\n`);
    },
    end(ok, note) {
      const seconds = elapsed();
      const summary = ok
        ? `${label}: ${formatBytes(bytes - first)} in ${seconds.toFixed(1)} s ` +
          `(${formatBytes(Math.round((bytes - first) / Math.max(seconds, 1e-3)))}/s), ${note}`
        : `${label}: failed after ${formatBytes(bytes)}: ${note}`;
      if (mode === "bar") {
        write(`\r${summary}${" ".repeat(Math.max(0, drawn - summary.length))}\n`);
      } else write(`  ${summary}\n`);
    },
  };
}
