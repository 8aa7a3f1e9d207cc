// The progress parts the download and training displays share (data/progress.ts), and the
// training display built on them (cli/progress.ts): what each mode writes, byte for byte.
import { deepEqual, equal, ok } from "node:assert/strict";
import { TrainingProgress } from "../../cli/progress.ts";
import { formatBar, formatEta, resolveProgressMode, StatusLine } from "../../data/progress.ts";
import type { EpochRecord } from "../../train/history.ts";

Deno.test("progress parts: mode, bar, ETA, status line", () => {
  for (const mode of ["bar", "lines", "none"] as const) equal(resolveProgressMode(mode), mode);
  equal(resolveProgressMode("auto"), Deno.stderr.isTerminal() ? "bar" : "lines");
  equal(formatBar(0.5, 10), "[#####.....]");
  equal(formatBar(0, 4), "[....]");
  equal(formatBar(1.7, 4), "[####]", "clamped to full");
  equal(formatBar(-1, 4), "[....]", "clamped to empty");
  equal(formatBar(1 / 3).length, 26, "24 characters inside by default");
  equal(formatEta(90, 1), "1m30s");
  equal(formatEta(5, 0), "?");
  equal(formatEta(5, Number.NaN), "?");
  equal(formatEta(5, Infinity), "0s");
  const out: string[] = [];
  const status = new StatusLine((text) => out.push(text));
  status.clear();
  ok(!status.drawn);
  status.draw("abcdef");
  ok(status.drawn);
  status.draw("xy");
  status.finish("done");
  status.draw("q");
  status.clear();
  status.clear();
  deepEqual(out, ["\rabcdef", "\rxy    ", "\rdone\n", "\rq", "\r \r"]);
});

const record: EpochRecord = {
  epoch: 2,
  lr: 0.01,
  trainLoss: 0.5,
  trainAccuracy: 0.8,
  valLoss: 0.25,
  valAccuracy: 0.9,
  trainImages: 1000,
  trainSeconds: 2,
  seconds: 2.5,
  imagesPerSecond: 1234.4,
};
const step = {
  epoch: 2,
  epochs: 3,
  step: 5,
  steps: 10,
  images: 640,
  seconds: 2,
  loss: 0.75,
  accuracy: 0.7,
};
const EPOCH_LINE = "[m] epoch 2/3  train loss 0.5000 acc 0.8000  val loss 0.2500 acc 0.9000  " +
  "lr 0.0100  2.5s  1,234 img/s";

Deno.test("training progress: a redrawn bar then the epoch line; lines only; nothing", () => {
  const written: Record<string, string[]> = { bar: [], lines: [], none: [] };
  for (const mode of ["bar", "lines", "none"] as const) {
    const progress = new TrainingProgress({
      mode,
      label: "[m] ",
      write: (text) => written[mode].push(text),
    });
    equal(progress.mode, mode);
    progress.epochStart();
    progress.step(step);
    progress.step({ ...step, step: 0, seconds: 0 });
    progress.epochEnd(record, 3);
    progress.line("note");
  }
  const bar = "[m] epoch 2/3 [############............] 5/10  320 img/s  loss 0.7500  ETA 2s";
  const empty = "[m] epoch 2/3 [........................] 0/10  0 img/s  loss 0.7500  ETA ?";
  deepEqual(written.bar, [
    `\r${bar}`,
    `\r${empty}${" ".repeat(bar.length - empty.length)}`,
    `\r${" ".repeat(empty.length)}\r`,
    `${EPOCH_LINE}\n`,
    "note\n",
  ]);
  deepEqual(written.lines, [`${EPOCH_LINE}\n`, "note\n"]);
  deepEqual(written.none, []);
});
