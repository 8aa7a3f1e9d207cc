/**
 * `train`: one model, trained and evaluated end to end; `deno task train` runs it with the
 * study's CNN-BN defaults (Adam, lr 0.01, batch 128, 10 epochs).
 *
 * @module
 */

import { join } from "node:path";
import { init } from "../mod.ts";
import type { ModelName } from "../models/mod.ts";
import { type Flags, UsageError } from "./args.ts";
import { dataChoice } from "./data.ts";
import { studyMatch } from "./experiments.ts";
import { displayPath, writeJson, writeText } from "./files.ts";
import { checkBatchSize, checkL1 } from "./device_limits.ts";
import { DATA_FLAGS, HELP_FLAG, RUN_FLAGS, TRAIN_FLAGS } from "./flags.ts";
import { type CommandIo, type CommandSpec, runCommand, setupRun } from "./harness.ts";
import { INTERRUPTED_EXIT_CODE } from "./interrupt.ts";
import { trainReport } from "./report.ts";
import { resolveResume, RESUME_FLAG, writeCommandFile } from "./resume.ts";
import { interruptedIfAborted, type RunSpec, runSummary, runTraining } from "./run_training.ts";
import { reportUnfinished } from "./unfinished.ts";
import { runSeededTrain, seedList, SEEDS_FLAG, splitFixed } from "./seeds.ts";

/** The `train` command. */
export const TRAIN_COMMAND: CommandSpec = {
  name: "train",
  description: `
Trains one model on FashionMNIST (validating after every epoch), evaluates it on the test set,
and writes to --out: weights.safetensors, checkpoint.safetensors (after every epoch),
history.json, history.csv, curves.svg, summary.json and report.md (the study's numbers beside
ours). Defaults: the study's CNN-BN setup (Adam, lr 0.01, batch 128, 10 epochs).
Ctrl-C stops after the GPU work in flight and keeps every finished epoch.`,
  flags: [...TRAIN_FLAGS, ...DATA_FLAGS, SEEDS_FLAG, ...RUN_FLAGS, RESUME_FLAG, HELP_FLAG],
};

const TITLES: Record<ModelName, string> = {
  "mlp": "MLP",
  "cnn": "CNN",
  "cnn-bn": "CNN-BN",
  "tuning-cnn": "Tuning CNN",
};

/** The run spec that `train`'s flags describe. */
function specFromFlags(flags: Flags): RunSpec {
  const model = flags.string("model") as ModelName;
  const optimizer = flags.string("optimizer") as "adam" | "sgd";
  const spec: RunSpec = {
    name: model,
    title: "",
    model,
    ...(model === "tuning-cnn" ? { l1: flags.number("l1") } : {}),
    optimizer,
    lr: flags.number("lr")!,
    momentum: flags.number("momentum")!,
    batchSize: flags.number("batch-size")!,
    epochs: flags.number("epochs")!,
    stepSize: flags.number("step-size")!,
    gamma: flags.number("gamma")!,
    seed: flags.number("seed")!,
  };
  const opt = optimizer === "adam" ? "Adam" : "SGD";
  const l1 = model === "tuning-cnn" ? ` (l1 ${spec.l1})` : "";
  const schedule = spec.stepSize > 0 ? `, StepLR(${spec.stepSize}, ${spec.gamma})` : "";
  spec.title = `${TITLES[model]}${l1}: ${opt}, lr ${spec.lr}, batch ${spec.batchSize}${schedule}`;
  return spec;
}

/** Runs `train` with its arguments (without the command name); resolves to the exit code. */
export function trainCommand(args: readonly string[], io: CommandIo): Promise<number> {
  return runCommand(TRAIN_COMMAND, args, io, async (given) => {
    const resumed = await resolveResume("train", TRAIN_COMMAND.flags, given);
    const flags = resumed?.flags ?? given;
    const runArgs = resumed?.args ?? args;
    const spec = specFromFlags(flags);
    const seeds = seedList("train", flags);
    if (flags.has("l1") && spec.model !== "tuning-cnn") {
      throw new UsageError(
        `train: --l1 does not apply to --model ${spec.model}: it sets tuning-cnn's hidden width`,
      );
    }
    if (flags.has("momentum") && spec.optimizer !== "sgd") {
      throw new UsageError(
        `train: --momentum does not apply to --optimizer ${spec.optimizer}: it is SGD's`,
      );
    }
    if (flags.has("gamma") && spec.stepSize === 0) {
      throw new UsageError(
        "train: --gamma does not apply without --step-size N (N > 0): the lr is constant",
      );
    }
    // What the adapter holds, before the output folder, the data or the weights.
    dataChoice("train", flags);
    await init();
    if (spec.l1 !== undefined) checkL1("train", spec.l1, "--l1");
    const config = { model: spec.model, l1: spec.l1 };
    checkBatchSize("train", config, "batch-size", spec.batchSize);
    checkBatchSize("train", config, "eval-batch-size", flags.number("eval-batch-size")!);
    const setup = await setupRun("train", runArgs, flags, io, {
      outDir: resumed?.dir,
      startedAt: resumed?.started,
    });
    try {
      if (!resumed) await writeCommandFile(setup.dir, "train", args);
      if (seeds) {
        return await runSeededTrain(spec, seeds, setup, io, {
          fixedSplit: splitFixed(flags),
          resume: resumed !== undefined,
          study: studyMatch(spec),
        });
      }
      io.err(
        `Run: ${spec.title}, ${spec.epochs} epoch${
          spec.epochs === 1 ? "" : "s"
        }, seed ${spec.seed}`,
      );
      const trained = await runTraining(spec, {
        data: setup.data,
        dir: setup.dir,
        evalBatchSize: setup.evalBatchSize,
        progress: setup.progress,
        signal: setup.interrupt.signal,
        log: io.err,
        resume: resumed !== undefined,
      });
      // Ctrl-C after the run's own files were written: the command's files say interrupted too.
      const result = interruptedIfAborted(trained, setup.interrupt.signal);
      const study = studyMatch(spec);
      await writeJson(join(setup.dir, "summary.json"), {
        command: "train",
        ...runSummary(result),
        environment: setup.env,
        data: { source: setup.data.prepared.source, split: setup.data.prepared.split },
        study: study ?? null,
      });
      await writeText(
        join(setup.dir, "report.md"),
        trainReport({ result, env: setup.env, data: setup.data.prepared, study }),
      );
      if (result.status !== "completed" || setup.interrupt.signal.aborted) {
        if (result.error) io.err(`error: ${result.error}`);
        reportUnfinished(interruptedIfAborted(result, setup.interrupt.signal), io);
        io.err(`Report: ${join(displayPath(setup.dir), "report.md")}`);
        return result.status === "diverged" ? 1 : INTERRUPTED_EXIT_CODE;
      }
      const test = result.test!;
      io.out(
        `Test accuracy ${test.accuracy.toFixed(4)}, mean NLL ${test.loss.toFixed(4)} ` +
          `(${test.samples.toLocaleString("en-US")} images)`,
      );
      io.out(
        `Results in ${displayPath(setup.dir)}: report.md, summary.json, history.json, ` +
          "history.csv, curves.svg, weights.safetensors, checkpoint.safetensors",
      );
      return 0;
    } finally {
      setup.dispose();
    }
  });
}
