/**
 * Weights and training checkpoints as safetensors files, read back from the GPU in one copy and
 * written atomically (temporary file, fsync, rename).
 *
 * - Weights (`saveWeights`): the model's state dict under PyTorch's names, plus metadata
 *   `wgtorch.model` (the model's config as JSON, e.g. `{"model":"cnn-bn"}`) and any extra strings.
 * - Checkpoints (`saveCheckpoint`): `model.<name>` tensors, `optimizer.<index>.<state>` tensors,
 *   and metadata `wgtorch.checkpoint` (JSON: epoch, model config, optimizer step counts and
 *   hyperparameters, scheduler state, free `extra` data). Enough to resume training exactly
 *   (dropout masks aside, which come from the model's generator).
 *
 * @module
 */

import {
  type DecodedSafetensors,
  decodeSafetensors,
  encodeSafetensors,
} from "../nn/safetensors.ts";
import { copyBuffer, readBuffer } from "../nn/gpu/stream.ts";
import { Tensor, tensor } from "../nn/tensor.ts";
import type { Module } from "../nn/modules/module.ts";
import type { LRScheduler, LRSchedulerStateDict, ReduceLROnPlateau } from "./lr_scheduler.ts";
import type { LegacyOptimizerStateDict, Optimizer, OptimizerStateDict } from "./optim/optimizer.ts";
import { requireDenoFiles, writeFileAtomic } from "./tune/fs_atomic.ts";
import type { Json } from "./tune/types.ts";

/** A tensor on the CPU: shape and float32 values. */
export interface CpuTensor {
  /** Dimensions. */
  shape: number[];
  /** Values, row-major. */
  data: Float32Array;
}

/** Metadata key of a weights file's model config. */
export const MODEL_KEY = "wgtorch.model";
/** Metadata key of a checkpoint's JSON. */
export const CHECKPOINT_KEY = "wgtorch.checkpoint";

/**
 * Copies every (f32) tensor to the CPU with a single readback: the tensors are first copied
 * back to back into one scratch buffer on the GPU.
 */
export async function readTensors(
  tensors: Record<string, Tensor>,
): Promise<Record<string, CpuTensor>> {
  const entries = Object.entries(tensors);
  for (const [name, item] of entries) {
    if (item.dtype !== "f32") throw new Error(`readTensors: "${name}" is ${item.dtype}, not f32`);
  }
  const total = entries.reduce((sum, [, item]) => sum + item.size, 0);
  const out: Record<string, CpuTensor> = {};
  if (total === 0) {
    for (const [name, item] of entries) {
      out[name] = { shape: [...item.shape], data: new Float32Array(0) };
    }
    return out;
  }
  const scratch = Tensor.empty([total]);
  try {
    let offset = 0;
    for (const [, item] of entries) {
      if (item.size > 0) copyBuffer(item.buffer, scratch.buffer, item.byteLength, 0, offset * 4);
      offset += item.size;
    }
    const all = new Float32Array(await readBuffer(scratch.buffer, total * 4));
    offset = 0;
    for (const [name, item] of entries) {
      out[name] = { shape: [...item.shape], data: all.slice(offset, offset + item.size) };
      offset += item.size;
    }
    return out;
  } finally {
    scratch.dispose();
  }
}

/** A model that can say what it is (wgtorch's `Classifier`s can). */
export interface DescribedModel extends Module {
  /** The model's name and settings, e.g. `{ model: "tuning-cnn", l1: 64 }`. */
  readonly config: Record<string, unknown>;
}

/**
 * Saves the model's parameters and buffers to `path` (PyTorch names, loadable with
 * `safetensors.torch.load_file`), with its config and `metadata` strings, atomically.
 */
export async function saveWeights(
  path: string,
  model: DescribedModel,
  metadata: Record<string, string> = {},
): Promise<void> {
  const tensors = await readTensors(model.stateDict());
  const bytes = encodeSafetensors(tensors, {
    ...metadata,
    [MODEL_KEY]: JSON.stringify(model.config),
  });
  await writeFileAtomic(path, bytes);
}

/** The JSON part of a checkpoint. */
export interface CheckpointInfo {
  /** Epochs finished when it was saved. */
  epoch: number;
  /** The model's config. */
  model: Record<string, unknown>;
  /**
   * The optimizer's state without its tensors (checkpoints saved before parameter groups hold
   * the legacy form, which `restoreCheckpoint` still loads).
   */
  optimizer: Omit<OptimizerStateDict, "state"> | Omit<LegacyOptimizerStateDict, "state">;
  /** The scheduler's state, if there was one. */
  scheduler: LRSchedulerStateDict | null;
  /** Free JSON saved by the caller (e.g. the command's settings and history). */
  extra: Json;
}

/** What training needs to go on. */
export interface TrainingState {
  /** The model (its config is saved). */
  model: DescribedModel;
  /** Its optimizer. */
  optimizer: Optimizer;
  /** Its LR scheduler, if any. */
  scheduler?: LRScheduler | ReduceLROnPlateau | null;
}

/** Saves model, optimizer and scheduler state after `epoch` epochs to `path`, atomically. */
export async function saveCheckpoint(
  path: string,
  state: TrainingState,
  info: { epoch: number; extra?: Json },
): Promise<void> {
  const { state: optimizerTensors, ...optimizer } = state.optimizer.stateDict();
  const gpuTensors: Record<string, Tensor> = {};
  for (const [name, item] of Object.entries(state.model.stateDict())) {
    gpuTensors[`model.${name}`] = item;
  }
  for (const [name, item] of Object.entries(optimizerTensors)) {
    gpuTensors[`optimizer.${name}`] = item;
  }
  const tensors = await readTensors(gpuTensors);
  const json: CheckpointInfo = {
    epoch: info.epoch,
    model: state.model.config,
    optimizer,
    scheduler: state.scheduler?.stateDict() ?? null,
    extra: info.extra ?? null,
  };
  await writeFileAtomic(
    path,
    encodeSafetensors(tensors, { [CHECKPOINT_KEY]: JSON.stringify(json) }),
  );
}

/** A checkpoint read from disk (tensors on the CPU). */
export interface LoadedCheckpoint extends CheckpointInfo {
  /** The model's state dict. */
  modelState: Record<string, CpuTensor>;
  /** The optimizer's state tensors, named `<parameter index>.<state>`. */
  optimizerState: Record<string, CpuTensor>;
}

async function decodeFile(path: string): Promise<DecodedSafetensors> {
  requireDenoFiles(`reading ${path}`);
  const bytes = await Deno.readFile(path);
  try {
    return decodeSafetensors(bytes);
  } catch (error) {
    throw new Error(`${path}: ${error instanceof Error ? error.message : error}`);
  }
}

function checkpointOf(decoded: DecodedSafetensors, path: string): LoadedCheckpoint {
  const text = decoded.metadata[CHECKPOINT_KEY];
  if (text === undefined) {
    throw new Error(`${path}: not a wgtorch checkpoint (no "${CHECKPOINT_KEY}" metadata)`);
  }
  const info = JSON.parse(text) as CheckpointInfo;
  const modelState: Record<string, CpuTensor> = {};
  const optimizerState: Record<string, CpuTensor> = {};
  for (const [name, item] of Object.entries(decoded.tensors)) {
    if (name.startsWith("model.")) modelState[name.slice(6)] = item;
    else if (name.startsWith("optimizer.")) optimizerState[name.slice(10)] = item;
  }
  return { ...info, modelState, optimizerState };
}

/** Reads a checkpoint written by `saveCheckpoint`. Errors name the file. */
export async function loadCheckpoint(path: string): Promise<LoadedCheckpoint> {
  return checkpointOf(await decodeFile(path), path);
}

/** Puts a loaded checkpoint's state into a model, optimizer and scheduler of the same kind. */
export function restoreCheckpoint(checkpoint: LoadedCheckpoint, state: TrainingState): void {
  state.model.loadStateDict(checkpoint.modelState);
  const tensors: Record<string, Tensor> = {};
  try {
    for (const [name, item] of Object.entries(checkpoint.optimizerState)) {
      tensors[name] = tensor(item.data, item.shape);
    }
    state.optimizer.loadStateDict({ ...checkpoint.optimizer, state: tensors });
  } finally {
    for (const item of Object.values(tensors)) item.dispose();
  }
  if (state.scheduler && checkpoint.scheduler) state.scheduler.loadStateDict(checkpoint.scheduler);
}

/** Model weights from a weights file or a checkpoint, with the model's config. */
export interface LoadedWeights {
  /** The model's config (`{ model: "cnn-bn" }`...), or null when the file has none. */
  config: Record<string, unknown> | null;
  /** The state dict. */
  state: Record<string, CpuTensor>;
  /** Whether the file was a checkpoint (then `epoch` says after how many epochs). */
  checkpoint: boolean;
  /** Epochs finished, for a checkpoint. */
  epoch?: number;
  /** The file's metadata strings. */
  metadata: Record<string, string>;
}

/** Reads model weights from a `saveWeights` file, a checkpoint, or any F32 safetensors file. */
export async function loadWeights(path: string): Promise<LoadedWeights> {
  const decoded = await decodeFile(path);
  if (decoded.metadata[CHECKPOINT_KEY] !== undefined) {
    const checkpoint = checkpointOf(decoded, path);
    return {
      config: checkpoint.model,
      state: checkpoint.modelState,
      checkpoint: true,
      epoch: checkpoint.epoch,
      metadata: decoded.metadata,
    };
  }
  const text = decoded.metadata[MODEL_KEY];
  return {
    config: text === undefined ? null : JSON.parse(text),
    state: decoded.tensors,
    checkpoint: false,
    metadata: decoded.metadata,
  };
}
