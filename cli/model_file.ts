/**
 * A trained model from a file: `weights.safetensors` or `checkpoint.safetensors` written by this
 * CLI (they name their model), or any safetensors file with PyTorch's names plus `--model`.
 *
 * @module
 */

import { type Classifier, createModel, type ModelName } from "../nn/models.ts";
import { type LoadedWeights, loadWeights } from "../train/checkpoint.ts";
import { UsageError } from "./args.ts";

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
 * it. Throws `UsageError` when the file names no model and none is given.
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
    if (error instanceof Deno.errors.NotFound) {
      throw new UsageError(`${command}: --weights ${path}: no such file`);
    }
    throw error;
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
  const l1 = override.l1 ?? (file.config?.l1 as number | undefined);
  const model = createModel(name as ModelName, { l1 });
  try {
    model.loadStateDict(file.state);
  } catch (error) {
    model.dispose();
    throw new Error(`${path}: ${error instanceof Error ? error.message : error}`);
  }
  model.eval();
  return { model, file };
}

/** One line naming the model and where its weights come from. */
export function describeModelFile(path: string, loaded: LoadedModel): string {
  const what = loaded.file.checkpoint ? `checkpoint after epoch ${loaded.file.epoch}` : "weights";
  const config = loaded.model.config;
  const l1 = config.model === "tuning-cnn" ? ` (l1 ${config.l1})` : "";
  return `${path}: ${config.model}${l1}, ${what}`;
}
