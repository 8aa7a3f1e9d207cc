/**
 * `evaluate --weights FILE`: test-set loss and accuracy, per-class accuracy and the confusion
 * matrix of saved weights (or a checkpoint).
 *
 * @module
 */

import { join } from "node:path";
import { CLASS_NAMES } from "../data/fashion_mnist.ts";
import { GpuDataset } from "../data/loader.ts";
import { init } from "../nn/gpu/device.ts";
import { DataLoader } from "../data/loader.ts";
import { perClassAccuracy } from "../train/confusion.ts";
import { evaluate } from "../train/fit.ts";
import { type FlagSpec, UsageError } from "./args.ts";
import { dataChoice, prepareData, type PreparedData } from "./data.ts";
import { checkBatchSize } from "./device_limits.ts";
import { runEnvironment } from "./environment.ts";
import { makeOutDir, writeJson, writeText } from "./files.ts";
import { DATA_FLAGS, HELP_FLAG, TRAIN_FLAGS } from "./flags.ts";
import { type CommandIo, type CommandSpec, runCommand } from "./harness.ts";
import { fixed, table } from "./markdown.ts";
import { describeModelFile, loadModelFile } from "./model_file.ts";

const pick = (flags: readonly FlagSpec[], names: string[]) =>
  flags.filter((flag) => names.includes(flag.name));

/** Flags that say which weights to load. */
export const WEIGHTS_FLAGS: readonly FlagSpec[] = [
  {
    name: "weights",
    kind: "string",
    metavar: "FILE",
    help: "weights.safetensors or checkpoint.safetensors written by train (required)",
  },
  {
    ...TRAIN_FLAGS.find((f) => f.name === "model")!,
    default: undefined,
    defaultText: "the one the file names",
    help: "architecture, for safetensors files that do not name theirs",
  },
  {
    ...TRAIN_FLAGS.find((f) => f.name === "l1")!,
    default: undefined,
    defaultText: "the file's",
  },
];

/** The `evaluate` command. */
export const EVALUATE_COMMAND: CommandSpec = {
  name: "evaluate",
  description: `
Evaluates saved weights on the FashionMNIST test set: mean NLL per sample, accuracy, accuracy
of each class and the confusion matrix. With --out, also writes evaluation.json and
evaluation.md there.`,
  flags: [
    ...WEIGHTS_FLAGS,
    ...pick(DATA_FLAGS, ["data-dir", "offline", "no-verify", "test-limit"]),
    { name: "batch-size", kind: "integer", min: 1, default: 1000, help: "evaluation batch size" },
    {
      name: "out",
      kind: "string",
      metavar: "DIR",
      help: "also write evaluation.json and .md here",
    },
    { name: "json", kind: "boolean", help: "print the results as JSON instead of text" },
    HELP_FLAG,
  ],
};

/** Text columns, left-aligned first column, right-aligned others. */
function alignRows(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) =>
    row.map((cell, c) => c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join("  ")
  );
}

/** Runs `evaluate`; resolves to the exit code. */
export function evaluateCommand(args: readonly string[], io: CommandIo): Promise<number> {
  return runCommand(EVALUATE_COMMAND, args, io, async (flags) => {
    const path = flags.string("weights");
    if (path === undefined) throw new UsageError("evaluate: --weights FILE is required");
    const choice = { ...dataChoice("evaluate", flags), valSplit: 0 };
    const out = flags.string("out");
    if (out !== undefined) await makeOutDir("evaluate", out);
    await init();
    const env = runEnvironment("evaluate", args);
    io.err(`Adapter: ${env.adapter}`);
    const loaded = await loadModelFile("evaluate", path, {
      model: flags.string("model"),
      l1: flags.number("l1"),
    });
    let prepared: PreparedData;
    try {
      checkBatchSize("evaluate", loaded.model.config, "batch-size", flags.number("batch-size")!);
      prepared = await prepareData(choice, io.err);
    } catch (error) {
      loaded.model.dispose();
      throw error;
    }
    const test = new GpuDataset(prepared.test);
    const loader = new DataLoader(test, { batchSize: flags.number("batch-size")!, shuffle: false });
    try {
      const result = await evaluate(loaded.model, loader, { confusion: true });
      const confusion = result.confusion!;
      const accuracies = perClassAccuracy(confusion);
      const perClass = CLASS_NAMES.map((name, i) => ({
        class: name,
        accuracy: accuracies[i],
        images: confusion[i].reduce((a, b) => a + b, 0),
      }));
      const summary = {
        weights: path,
        model: loaded.model.config,
        checkpointEpoch: loaded.file.epoch ?? null,
        data: prepared.source,
        images: result.samples,
        loss: result.loss,
        accuracy: result.accuracy,
        perClass,
        confusion,
        seconds: result.seconds,
        adapter: env.adapter,
      };
      if (flags.boolean("json")) io.out(JSON.stringify(summary, null, 2));
      else {
        io.out(`Weights: ${describeModelFile(path, loaded)}`);
        io.out(`Test set: ${result.samples.toLocaleString("en-US")} images; ${prepared.source}`);
        io.out(`Mean NLL ${result.loss.toFixed(4)}, accuracy ${result.accuracy.toFixed(4)}`);
        io.out("");
        io.out("Per-class accuracy:");
        for (
          const line of alignRows([
            ["class", "accuracy", "images"],
            ...perClass.map((p) => [p.class, fixed(p.accuracy, 3), String(p.images)]),
          ])
        ) io.out(`  ${line}`);
        io.out("");
        io.out("Confusion matrix (rows: true class, columns: predicted class 0-9):");
        for (
          const line of alignRows([
            ["", ...CLASS_NAMES.map((_, i) => String(i))],
            ...confusion.map((row, i) => [`${i} ${CLASS_NAMES[i]}`, ...row.map(String)]),
          ])
        ) io.out(`  ${line}`);
      }
      if (out !== undefined) {
        await writeJson(join(out, "evaluation.json"), summary);
        await writeText(join(out, "evaluation.md"), evaluationMarkdown(path, summary));
        io.err(`Wrote ${join(out, "evaluation.json")} and evaluation.md`);
      }
      return 0;
    } finally {
      loader.dispose();
      test.dispose();
      loaded.model.dispose();
    }
  });
}

function evaluationMarkdown(
  path: string,
  s: {
    loss: number;
    accuracy: number;
    images: number;
    perClass: { class: string; accuracy: number; images: number }[];
    confusion: number[][];
    adapter: string;
    data: string;
  },
): string {
  return [
    `# Evaluation of \`${path}\``,
    "",
    `- Data: ${s.data}, ${s.images} test images`,
    `- Adapter: ${s.adapter}`,
    `- Mean NLL ${s.loss.toFixed(4)}, accuracy ${s.accuracy.toFixed(4)}`,
    "",
    "## Per-class accuracy",
    "",
    table(
      ["class", "accuracy", "images"],
      s.perClass.map((p) => [p.class, fixed(p.accuracy, 3), p.images]),
    ),
    "",
    "## Confusion matrix (rows: true class, columns: predicted)",
    "",
    table(
      ["true \\ predicted", ...CLASS_NAMES],
      s.confusion.map((row, i) => [CLASS_NAMES[i], ...row]),
    ),
    "",
  ].join("\n");
}
