/**
 * report.md of training runs and experiments: the study's table beside ours, the loss scaling,
 * the split, the seed, the adapter, wall time, the curves, per-epoch numbers and per-class
 * accuracy.
 *
 * @module
 */

import type { EpochRecord } from "../mod.ts";
import { CLASS_NAMES } from "../data/mod.ts";
import { describeSplit, type PreparedData } from "./data.ts";
import { environmentLines, type RunEnvironment } from "./environment.ts";
import { duration, fixed, significant, table } from "./markdown.ts";
import { describeSpec, type RunResult, type TestResult } from "./run_training.ts";
import type { StudyRow } from "./study.ts";

/** How the study's loss compares with ours. */
export const LOSS_NOTE =
  "**Loss scaling.** The study's tables give its notebook's loss: the sum of the per-batch mean " +
  "losses divided by the number of samples, i.e. about *mean NLL / batch size* (0.003 at batch " +
  "128 is a mean NLL of about 0.38). Our *loss (study scaling)* column is our mean NLL divided by " +
  "the training batch size, for comparison; *mean NLL* is the true loss per sample.";

/** How the study's split differs from ours. */
export const SPLIT_NOTE =
  "**Split.** The study's numbers come from its notebook, which swapped the parts: it trained on " +
  "12,000 images and validated on 48,000. We train on 48,000 and validate on 12,000 (the report's " +
  "stated protocol) unless `--swap-split` is given.";

/** The per-epoch numbers as a table. */
export function epochTable(history: readonly EpochRecord[]): string {
  return table(
    ["epoch", "lr", "train loss", "train acc", "val loss", "val acc", "seconds", "img/s"],
    history.map((r) => [
      r.epoch,
      significant(r.lr, 3),
      fixed(r.trainLoss),
      fixed(r.trainAccuracy),
      fixed(r.valLoss),
      fixed(r.valAccuracy),
      r.seconds.toFixed(1),
      Math.round(r.imagesPerSecond).toLocaleString("en-US"),
    ]),
  );
}

/** Per-class test accuracy of several runs, one column each. */
export function perClassTable(runs: readonly { name: string; test: TestResult | null }[]): string {
  const withTest = runs.filter((r) => r.test);
  return table(
    ["class", ...withTest.map((r) => r.name)],
    CLASS_NAMES.map((name) => [name, ...withTest.map((r) => fixed(r.test!.perClass[name], 3))]),
  );
}

/** The confusion matrix (rows: true class, columns: predicted). */
function confusionTable(test: TestResult): string {
  return table(
    ["true \\ predicted", ...CLASS_NAMES],
    test.confusion.map((row, i) => [CLASS_NAMES[i], ...row]),
  );
}

/** One line on how a run ended and how long it took. */
export function statusLine(result: RunResult): string {
  const train = result.history.reduce((s, r) => s + r.trainSeconds, 0);
  const images = result.history.reduce((s, r) => s + r.trainImages, 0);
  const speed = train > 0 ? `, ${Math.round(images / train).toLocaleString("en-US")} img/s` : "";
  const epochs = `${result.history.length}/${result.spec.epochs} epochs`;
  const ended = result.status === "completed"
    ? "completed"
    : result.status === "interrupted"
    ? "**interrupted** (Ctrl-C)"
    : `**diverged**: ${result.error}`;
  return `${ended}, ${epochs}, wall time ${duration(result.wallSeconds)} (training ` +
    `${duration(train)}${speed})`;
}

/** Lines describing the data and the split. */
export function dataLines(data: PreparedData): string[] {
  return [`- Data: ${data.source}`, `- Split: ${describeSplit(data.split)}`];
}

/** A notice when the run is shorter than the study's (fewer epochs, less data). */
export function quickRunNotice(data: PreparedData, epochsCut: boolean): string | null {
  const reasons = [
    ...(epochsCut ? ["fewer epochs than the study"] : []),
    ...(data.split.limit !== undefined
      ? [`only the first ${data.split.limit} training images`]
      : []),
    ...(data.split.testLimit !== undefined ? [`only ${data.split.testLimit} test images`] : []),
  ];
  return reasons.length
    ? `> **Quick run** (${reasons.join(", ")}): the numbers are not comparable with the study's.`
    : null;
}

/** Our row beside the study's: loss (study scaling), accuracy, mean NLL. */
export function comparisonRow(
  label: string,
  study: StudyRow | undefined,
  result: RunResult | undefined,
): (string | number)[] {
  const test = result?.test;
  return [
    label,
    study ? String(study.loss) : "—",
    study ? String(study.accuracy) : "—",
    fixed(test?.studyLoss, 4),
    fixed(test?.accuracy, 4),
    fixed(test?.loss, 4),
  ];
}

/** The header of comparison tables. */
export const COMPARISON_HEADERS: readonly string[] = [
  "",
  "study loss",
  "study accuracy",
  "our loss (study scaling)",
  "our accuracy",
  "our mean NLL",
];

/** report.md of the `train` command. */
export function trainReport(init: {
  result: RunResult;
  env: RunEnvironment;
  data: PreparedData;
  study?: { table: string; row: StudyRow; epochs: number };
}): string {
  const { result, env, data, study } = init;
  const test = result.test;
  const lines = [
    `# wgtorch train: ${result.spec.title}`,
    "",
    ...environmentLines(env),
    ...dataLines(data),
    `- Run: ${describeSpec(result.spec)}`,
    `- Model: ${result.description} (${result.parameters.toLocaleString("en-US")} parameters)`,
    `- Status: ${statusLine(result)}`,
    "",
  ];
  const notice = quickRunNotice(data, study ? result.spec.epochs < study.epochs : false);
  if (notice) lines.push(notice, "");
  lines.push("## Test set", "");
  if (test) {
    const label = study ? `${study.table}, ${study.row.row}` : "this run";
    lines.push(
      table([...COMPARISON_HEADERS], [comparisonRow(label, study?.row, result)]),
      "",
      study
        ? `The study's row is ${study.table}'s ${study.row.row} (same model and settings).`
        : "The study has no run with these settings.",
      "",
      LOSS_NOTE,
      "",
      SPLIT_NOTE,
      "",
    );
  } else {
    lines.push("No test evaluation: the run did not complete.", "");
  }
  lines.push("## Curves", "", "![loss and accuracy per epoch](curves.svg)", "");
  lines.push(
    "## Per epoch",
    "",
    epochTable(result.history),
    "",
    "Epoch 1's time includes compiling the WGSL kernels for each new batch shape.",
    "",
  );
  if (test) {
    lines.push("## Per-class test accuracy", "", perClassTable([{ name: "accuracy", test }]), "");
    lines.push("## Confusion matrix (test set)", "", confusionTable(test), "");
  }
  lines.push(
    "## Files",
    "",
    "- `history.json`, `history.csv`: per-epoch numbers (true mean NLL)",
    "- `curves.svg`: loss and accuracy, train vs validation",
    "- `checkpoint.safetensors`: model + optimizer + LR schedule after the last finished epoch",
    ...(test ? ["- `weights.safetensors`: the trained weights (PyTorch names)"] : []),
    "- `summary.json`: everything above, for programs",
    "",
  );
  return lines.join("\n");
}
