/**
 * A trained model from a file: `weights.safetensors` or `checkpoint.safetensors` written by this
 * CLI (they name their model), or any safetensors file with PyTorch's names plus `--model`.
 *
 * @module
 */

import { type Classifier, createModel, type ModelName } from "../nn/models.ts";
import { DataError } from "../data/errors.ts";
import { type CpuTensor, type LoadedWeights, loadWeights } from "../train/checkpoint.ts";
import { UsageError } from "./args.ts";
import { checkL1 } from "./device_limits.ts";

const MODELS: readonly ModelName[] = ["mlp", "cnn", "cnn-bn", "tuning-cnn"];

/** A model with its weights loaded, and what the file said. */
export interface LoadedModel {
  /** The model, in eval mode. */
  model: Classifier;
  /** The file's contents (config, checkpoint epoch, metadata). */
  file: LoadedWeights;
}

/**
 * Builds the model a weights file describes (or `override.model`) and loads the weights into
 * it (call `init()` first). Throws `UsageError` when the file names no model and none is given,
 * or names an `l1` larger than the adapter holds.
 */
export async function loadModelFile(
  command: string,
  path: string,
  override: { model?: string; l1?: number } = {},
): Promise<LoadedModel> {
  let file: LoadedWeights;
  try {
    file = await loadWeights(path);
  } catch (error) {
    throw new UsageError(`${command}: --weights ${path}: ${whyUnreadable(error)}`);
  }
  const bad = firstNonFinite(file.state);
  if (bad) {
    throw new DataError(
      `${path}: ${bad} is NaN or infinite: the run that saved these weights diverged; use a ` +
        "checkpoint or weights saved before that",
      path,
    );
  }
  const name = override.model ?? (file.config?.model as string | undefined);
  if (name === undefined) {
    throw new UsageError(
      `${command}: ${path} does not say which model it holds: add --model ` + MODELS.join("|"),
    );
  }
  if (!MODELS.includes(name as ModelName)) {
    throw new UsageError(`${command}: unknown model "${name}" in ${path}`);
  }
  const named = file.config?.model, recordedL1 = file.config?.l1;
  if (override.model !== undefined && named !== undefined && override.model !== named) {
    throw new UsageError(
      `${command}: --model ${override.model} does not apply: ${path} holds ${named} (drop --model)`,
    );
  }
  if (override.l1 !== undefined && name !== "tuning-cnn") {
    throw new UsageError(
      `${command}: --l1 does not apply to ${name}: it sets the hidden width of tuning-cnn only`,
    );
  }
  if (override.l1 !== undefined && recordedL1 !== undefined && override.l1 !== recordedL1) {
    throw new UsageError(
      `${command}: --l1 ${override.l1} does not apply: ${path} holds a tuning-cnn with l1 ` +
        `${JSON.stringify(recordedL1)} (drop --l1)`,
    );
  }
  const l1 = override.l1 ?? (recordedL1 as number | undefined);
  if (name === "tuning-cnn" && l1 !== undefined) {
    if (override.l1 !== undefined) checkL1(command, l1, "--l1");
    else if (!Number.isInteger(l1) || l1 < 1) {
      throw new UsageError(
        `${command}: ${path}: its metadata gives l1 ${JSON.stringify(l1)}: expected a positive ` +
          "integer",
      );
    } else checkL1(command, l1, `${path}: l1 in its metadata`);
  }
  const model = createModel(name as ModelName, { l1 });
  try {
    model.loadStateDict(file.state);
  } catch (error) {
    model.dispose();
    const what = name === "tuning-cnn" ? `tuning-cnn with l1 ${model.config.l1}` : name;
    throw new UsageError(
      `${command}: --weights ${path} does not hold ${what} weights ` +
        `(${error instanceof Error ? error.message : error})`,
    );
  }
  model.eval();
  return { model, file };
}

/** Why a weights file could not be read, in one line. */
function whyUnreadable(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof SyntaxError) {
    return `its metadata is not valid JSON (${error.message})`;
  }
  return `not a readable safetensors file (${error instanceof Error ? error.message : error})`;
}

/** `name[index]` of the first NaN or infinite value of `state`, or null when all are finite. */
function firstNonFinite(state: Record<string, CpuTensor>): string | null {
  for (const [name, tensor] of Object.entries(state)) {
    const index = tensor.data.findIndex((value) => !Number.isFinite(value));
    if (index >= 0) return `${name}[${index}]`;
  }
  return null;
}

/** One line naming the model and where its weights come from. */
export function describeModelFile(path: string, loaded: LoadedModel): string {
  const what = loaded.file.checkpoint ? `checkpoint after epoch ${loaded.file.epoch}` : "weights";
  const config = loaded.model.config;
  const l1 = config.model === "tuning-cnn" ? ` (l1 ${config.l1})` : "";
  return `${path}: ${config.model}${l1}, ${what}`;
}
