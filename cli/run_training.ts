/**
 * One training run end to end, as every command runs it: build the model, optimizer and LR
 * schedule from a `RunSpec`, `fit` with progress, and after every epoch write the history (JSON
 * and CSV), the curves and a checkpoint, atomically; then evaluate on the test set and save the
 * weights. Ctrl-C and a diverging loss end the run cleanly with what was finished.
 *
 * Files in the run folder: `history.json`, `history.csv`, `curves.svg`, `checkpoint.safetensors`
 * (after every epoch), and at the end `weights.safetensors` and `summary.json`.
 *
 * @module
 */

import { join } from "node:path";
import { firstLine } from "../data/errors.ts";
import { CLASS_NAMES } from "../data/fashion_mnist.ts";
import { DataLoader } from "../data/loader.ts";
import { type Classifier, createModel, type ModelName } from "../nn/models.ts";
import { Rng } from "../nn/random.ts";
import {
  loadCheckpoint,
  restoreCheckpoint,
  saveCheckpoint,
  saveWeights,
} from "../train/checkpoint.ts";
import { perClassAccuracy } from "../train/confusion.ts";
import { evaluate, fit, NonFiniteLossError } from "../train/fit.ts";
import { type EpochRecord, historyToCsv } from "../train/history.ts";
import { StepLR } from "../train/lr_scheduler.ts";
import { Adam } from "../train/optim/adam.ts";
import type { Optimizer } from "../train/optim/optimizer.ts";
import { SGD } from "../train/optim/sgd.ts";
import { UsageError } from "./args.ts";
import { curvesSvg } from "./curves.ts";
import type { GpuData } from "./data.ts";
import { writeJson, writeText } from "./files.ts";
import { type ProgressMode, TrainingProgress } from "./progress.ts";

/** Everything that defines one training run. */
export interface RunSpec {
  /** Short name, also the run's folder inside an experiment (e.g. `cnn-bn`, `adam`). */
  name: string;
  /** Title of its figure. */
  title: string;
  /** Architecture. */
  model: ModelName;
  /** Hidden width (tuning CNN). */
  l1?: number;
  /** Optimizer. */
  optimizer: "adam" | "sgd";
  /** Learning rate. */
  lr: number;
  /** SGD momentum (0: plain SGD). */
  momentum: number;
  /** Training batch size. */
  batchSize: number;
  /** Epochs. */
  epochs: number;
  /** StepLR period in epochs (0: constant lr). */
  stepSize: number;
  /** StepLR factor. */
  gamma: number;
  /** Seed of the weights, dropout and batch order. */
  seed: number;
}

/** What a run needs besides its spec. */
export interface RunContext {
  /** The data, on the GPU. */
  data: GpuData;
  /** The run's folder (exists). */
  dir: string;
  /** Batch size of validation and test passes. */
  evalBatchSize: number;
  /** Progress display mode. */
  progress: ProgressMode;
  /** Stops training at the next read. */
  signal?: AbortSignal;
  /** Prints a line on stderr. */
  log: (line: string) => void;
  /**
   * Resume: a finished run found in `dir` (same spec) is read back instead of trained again, and
   * an unfinished one continues from its checkpoint.
   */
  resume?: boolean;
}

/** Test-set results. */
export interface TestResult {
  /** Mean NLL per sample. */
  loss: number;
  /** The study's scaling of the loss: mean NLL / batch size. */
  studyLoss: number;
  /** Accuracy. */
  accuracy: number;
  /** Images. */
  samples: number;
  /** Accuracy per class, by class name. */
  perClass: Record<string, number>;
  /** `confusion[true][predicted]`. */
  confusion: number[][];
  /** Seconds of the pass. */
  seconds: number;
}

/** How a run ended. */
export type RunStatus = "completed" | "interrupted" | "diverged";

/** What a run produced. */
export interface RunResult {
  /** Its spec. */
  spec: RunSpec;
  /** Its folder. */
  dir: string;
  /** How it ended. */
  status: RunStatus;
  /** Why it diverged. */
  error?: string;
  /** Every finished epoch. */
  history: EpochRecord[];
  /** Test results (completed runs). */
  test: TestResult | null;
  /** Trainable values. */
  parameters: number;
  /** The architecture in one line. */
  description: string;
  /** Wall seconds of the run (test pass and file writes included). */
  wallSeconds: number;
}

/** Builds the spec's optimizer over `model`. */
export function makeOptimizer(
  spec: Pick<RunSpec, "optimizer" | "lr" | "momentum">,
  model: Classifier,
): Optimizer {
  return spec.optimizer === "adam"
    ? new Adam(model.parameters(), { lr: spec.lr })
    : new SGD(model.parameters(), { lr: spec.lr, momentum: spec.momentum });
}

/** A one-line description of the spec's settings. */
export function describeSpec(spec: RunSpec): string {
  const opt = spec.optimizer === "adam"
    ? "Adam"
    : `SGD${spec.momentum > 0 ? ` (momentum ${spec.momentum})` : ""}`;
  const schedule = spec.stepSize > 0 ? `, StepLR(${spec.stepSize}, ${spec.gamma})` : "";
  const l1 = spec.model === "tuning-cnn" ? ` l1 ${spec.l1 ?? 64},` : "";
  return `${spec.model},${l1} ${opt} lr ${spec.lr}${schedule}, batch ${spec.batchSize}, ` +
    `${spec.epochs} epochs, seed ${spec.seed}`;
}

/** Evaluates `model` on the test set with per-class accuracy and the confusion matrix. */
async function testModel(
  model: Classifier,
  data: GpuData,
  evalBatchSize: number,
  trainBatchSize: number,
): Promise<TestResult> {
  const loader = data.evalLoader(data.test, evalBatchSize);
  try {
    const result = await evaluate(model, loader, { confusion: true });
    const confusion = result.confusion ?? [];
    const accuracies = perClassAccuracy(confusion);
    return {
      loss: result.loss,
      studyLoss: result.loss / trainBatchSize,
      accuracy: result.accuracy,
      samples: result.samples,
      perClass: Object.fromEntries(CLASS_NAMES.map((name, i) => [name, accuracies[i] ?? NaN])),
      confusion,
      seconds: result.seconds,
    };
  } finally {
    loader.dispose();
  }
}

function sameSpec(a: RunSpec, b: RunSpec): boolean {
  const key = (spec: RunSpec) => {
    const { title: _title, ...rest } = spec;
    return JSON.stringify(
      Object.entries(rest).filter(([, v]) => v !== undefined).sort(([x], [y]) =>
        x.localeCompare(y)
      ),
    );
  };
  return key(a) === key(b);
}

async function readJsonFile<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`${path}: ${error instanceof Error ? error.message : error}`);
  }
}

/** A finished run of `spec` in `dir`, read back from its files, if there is one. */
async function readFinishedRun(spec: RunSpec, dir: string): Promise<RunResult | undefined> {
  const summary = await readJsonFile<{
    status: RunStatus;
    spec: RunSpec;
    test: TestResult | null;
    model: { description: string; parameters: number };
    time: { wallSeconds: number };
  }>(join(dir, "summary.json"));
  if (!summary || summary.status !== "completed" || !sameSpec(summary.spec, spec)) return undefined;
  const saved = await readJsonFile<{ history: EpochRecord[] }>(join(dir, "history.json"));
  return {
    spec,
    dir,
    status: "completed",
    history: saved?.history ?? [],
    test: summary.test,
    parameters: summary.model.parameters,
    description: summary.model.description,
    wallSeconds: summary.time.wallSeconds,
  };
}

/** Runs `spec` in `context.dir` (see the module notes). Never throws for NaN or Ctrl-C. */
export async function runTraining(spec: RunSpec, context: RunContext): Promise<RunResult> {
  const { data, dir } = context;
  if (context.resume) {
    const finished = await readFinishedRun(spec, dir);
    if (finished) {
      context.log(`[${spec.name}] finished before: kept as it is`);
      return finished;
    }
  }
  let started = performance.now();
  const model = createModel(spec.model, { rng: new Rng(spec.seed), l1: spec.l1 });
  const optimizer = makeOptimizer(spec, model);
  const scheduler = spec.stepSize > 0
    ? new StepLR(optimizer, { stepSize: spec.stepSize, gamma: spec.gamma })
    : undefined;
  const train = new DataLoader(data.train, { batchSize: spec.batchSize, seed: spec.seed });
  const val = data.val ? data.evalLoader(data.val, context.evalBatchSize) : undefined;
  const progress = new TrainingProgress({ mode: context.progress, label: `[${spec.name}] ` });
  const base = {
    spec,
    dir,
    parameters: model.parameterCount(),
    description: model.description,
  };
  let history: EpochRecord[] = [];
  try {
    const checkpointPath = join(dir, "checkpoint.safetensors");
    if (context.resume && await Deno.stat(checkpointPath).then(() => true, () => false)) {
      let saved: Awaited<ReturnType<typeof loadCheckpoint>>;
      try {
        saved = await loadCheckpoint(checkpointPath);
      } catch (error) {
        const why = firstLine(error).replace(`${checkpointPath}: `, "");
        throw new UsageError(
          `--resume: cannot resume from ${checkpointPath}: it is damaged (${why}); move it away ` +
            "to train that run from epoch 1",
        );
      }
      const savedSpec = (saved.extra as { spec?: RunSpec } | null)?.spec;
      if (!savedSpec || !sameSpec(savedSpec, spec)) {
        throw new UsageError(
          `--resume: cannot resume from ${checkpointPath}: it was saved by a run with other ` +
            "settings",
        );
      }
      restoreCheckpoint(saved, { model, optimizer, scheduler });
      const file = await readJsonFile<{ history: EpochRecord[] }>(join(dir, "history.json"));
      history = (file?.history ?? []).slice(0, saved.epoch);
      if (history.length !== saved.epoch) {
        throw new Error(
          `${dir}: history.json has fewer epochs than the checkpoint (${saved.epoch})`,
        );
      }
      started -= history.reduce((sum, r) => sum + r.seconds, 0) * 1000;
      context.log(`[${spec.name}] resuming after epoch ${saved.epoch} of ${spec.epochs}`);
    }
    let status: RunStatus = "completed";
    let error: string | undefined;
    try {
      const result = await fit(model, {
        train,
        val,
        optimizer,
        scheduler,
        epochs: spec.epochs,
        history,
        signal: context.signal,
        progress,
        onEpoch: async (_record, done) => {
          history = [...done];
          await writeHistory(dir, spec, history);
          await saveCheckpoint(
            join(dir, "checkpoint.safetensors"),
            { model, optimizer, scheduler },
            {
              epoch: done.length,
              extra: { spec: { ...spec } },
            },
          );
        },
      });
      history = result.history;
      if (result.interrupted) status = "interrupted";
    } catch (caught) {
      if (!(caught instanceof NonFiniteLossError)) throw caught;
      progress.clear();
      history = caught.history;
      status = "diverged";
      error = caught.message;
    }
    progress.clear();
    // Ctrl-C in the last epoch's tail (validation, checkpoint) or in the test pass interrupts the
    // run like any other: no test result and no weights; --resume tests the last checkpoint.
    if (status === "completed" && context.signal?.aborted) status = "interrupted";
    let test: TestResult | null = null;
    if (status === "completed") {
      test = await testModel(model, data, context.evalBatchSize, spec.batchSize);
      if (context.signal?.aborted) {
        status = "interrupted";
        test = null;
      } else {
        await saveWeights(join(dir, "weights.safetensors"), model, {
          "wgtorch.run": JSON.stringify(spec),
        });
      }
    }
    const result: RunResult = {
      ...base,
      status,
      ...(error ? { error } : {}),
      history,
      test,
      wallSeconds: (performance.now() - started) / 1000,
    };
    await writeJson(join(dir, "summary.json"), runSummary(result));
    return result;
  } finally {
    train.dispose();
    val?.dispose();
    optimizer.dispose();
    model.dispose();
  }
}

/**
 * `result` as interrupted (no test result) when Ctrl-C came after it completed; a completed run
 * stays completed without Ctrl-C, and a diverged one stays diverged.
 */
export function interruptedIfAborted(result: RunResult, signal: AbortSignal): RunResult {
  return result.status === "completed" && signal.aborted
    ? { ...result, status: "interrupted", test: null }
    : result;
}

/** Writes `history.json`, `history.csv` and `curves.svg` of a run, atomically. */
async function writeHistory(
  dir: string,
  spec: RunSpec,
  history: readonly EpochRecord[],
): Promise<void> {
  await writeJson(join(dir, "history.json"), { run: spec.name, spec, history });
  await writeText(join(dir, "history.csv"), historyToCsv(history));
  await writeText(join(dir, "curves.svg"), curvesSvg(history, spec.title));
}

/** The JSON summary of a run (`summary.json`). */
export function runSummary(result: RunResult): Record<string, unknown> {
  const last = result.history.at(-1);
  const trainSeconds = result.history.reduce((sum, r) => sum + r.trainSeconds, 0);
  const images = result.history.reduce((sum, r) => sum + r.trainImages, 0);
  return {
    name: result.spec.name,
    status: result.status,
    ...(result.error ? { error: result.error } : {}),
    spec: result.spec,
    model: { description: result.description, parameters: result.parameters },
    epochsDone: result.history.length,
    last: last ?? null,
    test: result.test,
    time: {
      wallSeconds: result.wallSeconds,
      trainSeconds,
      imagesPerSecond: trainSeconds > 0 ? images / trainSeconds : null,
    },
    files: {
      history: "history.json",
      historyCsv: "history.csv",
      curves: "curves.svg",
      checkpoint: result.history.length > 0 ? "checkpoint.safetensors" : null,
      weights: result.status === "completed" ? "weights.safetensors" : null,
    },
  };
}
