/**
 * report.md of an experiment (`compare`, `optimizers`, `final`): the study's table beside ours,
 * the accuracy targets, the figure panels, per-class accuracy and per-epoch numbers.
 *
 * @module
 */

import { relative } from "node:path";
import type { PreparedData } from "./data.ts";
import { environmentLines, type RunEnvironment } from "./environment.ts";
import { type ExperimentResult, figureFile, STUDY_EPOCHS } from "./experiments.ts";
import { duration, table } from "./markdown.ts";
import {
  COMPARISON_HEADERS,
  comparisonRow,
  dataLines,
  epochTable,
  LOSS_NOTE,
  perClassTable,
  quickRunNotice,
  SPLIT_NOTE,
  statusLine,
} from "./report.ts";
import { describeSpec } from "./run_training.ts";
import { TARGETS } from "./study.ts";

/** The target column: `≥ 0.88 ✓` / `≥ 0.88 ✗` / `—`. */
function targetCell(key: string, accuracy: number | undefined): string {
  const target = TARGETS[key];
  if (target === undefined) return "—";
  if (accuracy === undefined) return `≥ ${target}`;
  return `≥ ${target} ${accuracy >= target ? "✓" : "✗"}`;
}

/** The experiment's comparison table (one row per run). */
export function experimentTable(outcome: ExperimentResult): string {
  const { experiment, results } = outcome;
  return table(
    [experiment.rowHeader, ...COMPARISON_HEADERS.slice(1), "target", "epochs", "wall time"],
    experiment.runs.map((run) => {
      const result = results.find((r) => r.spec.name === run.spec.name);
      return [
        ...comparisonRow(run.study.row, run.study, result),
        targetCell(`${experiment.name}/${run.spec.name}`, result?.test?.accuracy),
        result ? `${result.history.length}/${run.spec.epochs}` : "not run",
        result ? duration(result.wallSeconds) : "—",
      ];
    }),
  );
}

/** report.md of an experiment. */
export function experimentReport(init: {
  outcome: ExperimentResult;
  env: RunEnvironment;
  data: PreparedData;
  notes?: string[];
}): string {
  const { outcome, env, data } = init;
  const { experiment, results } = outcome;
  const cut = experiment.runs.some((run) =>
    run.spec.epochs < STUDY_EPOCHS[`${experiment.name}/${run.spec.name}`]
  );
  const seeds = [...new Set(experiment.runs.map((run) => run.spec.seed))].join(", ");
  const lines = [
    `# ${experiment.title}: the study's ${experiment.table} and ${experiment.figure}`,
    "",
    ...environmentLines(env),
    ...dataLines(data),
    `- Seed: ${seeds} (weights, dropout, batch order)`,
    ...(outcome.interrupted
      ? ["- **Interrupted** by Ctrl-C: the runs below are what finished."]
      : []),
    "",
  ];
  const notice = quickRunNotice(data, cut);
  if (notice) lines.push(notice, "");
  lines.push(
    `## ${experiment.table}: test set, the study beside ours`,
    "",
    experimentTable(outcome),
    "",
  );
  lines.push(
    "*target*: the accuracy this project's full runs must reach (48,000/12,000 split, the study's " +
      "epochs); ✓ met, ✗ missed.",
    "",
  );
  for (const note of [...experiment.notes, ...(init.notes ?? [])]) lines.push(`- ${note}`);
  for (const [name, dir] of Object.entries(outcome.reused)) {
    lines.push(
      `- ${name}: same settings and seed as \`${
        relative(outcome.dir, dir)
      }\`; its result is reused.`,
    );
  }
  lines.push("", LOSS_NOTE, "", SPLIT_NOTE, "");
  lines.push(`## ${experiment.figure}: loss and accuracy per epoch`, "");
  experiment.runs.forEach((run) => {
    if (!results.some((r) => r.spec.name === run.spec.name)) return;
    const letter = run.figure.slice(-1);
    lines.push(
      `### (${letter}) ${run.spec.title}`,
      "",
      `![${run.spec.title}](${figureFile(run)})`,
      "",
    );
  });
  if (results.some((r) => r.test)) {
    lines.push(
      "## Per-class test accuracy",
      "",
      perClassTable(results.map((r) => ({ name: r.spec.name, test: r.test }))),
      "",
    );
  }
  lines.push("## Runs", "");
  for (const result of results) {
    lines.push(
      `### ${result.spec.name}`,
      "",
      `- Settings: ${describeSpec(result.spec)}`,
      `- Model: ${result.description} (${result.parameters.toLocaleString("en-US")} parameters)`,
      `- Status: ${statusLine(result)}`,
      `- Folder: \`${relative(outcome.dir, result.dir) || "."}\``,
      "",
      epochTable(result.history),
      "",
    );
  }
  lines.push(
    "Epoch 1's time includes compiling the WGSL kernels for each new batch shape.",
    "",
    "## Files",
    "",
    "- `report.md` (this file), `summary.json` (everything, for programs)",
    "- `history.csv`, `history.json`: per-epoch numbers of every run (true mean NLL)",
    `- ${experiment.runs.map((run) => `\`${figureFile(run)}\``).join(", ")}: the figure's panels`,
    "- `<run>/`: each run's weights, last checkpoint, history, curves and summary",
    "",
  );
  return lines.join("\n");
}
