/**
 * What the adapter can hold for the study's models: the largest batch and the largest `l1`.
 * Every tensor an op reads is mirrored as an rgba32float texture (see `texture.ts`, whose rows
 * widen until a texture holds any storage binding), so a tensor may hold at most as many floats
 * as one texture, and as a storage binding at most `maxStorageBufferBindingSize` bytes. Checked when the settings are
 * known, these limits fail a run before its first step instead of in the middle of an epoch.
 *
 * @module
 */

import type { ModelName } from "./models.ts";
import { texelsPerRowFor } from "./gpu/texture.ts";

/** The adapter limits that bound a tensor's size (a subset of `GPUSupportedLimits`). */
export interface TensorSizeLimits {
  /** Rows of a tensor's texture mirror. */
  maxTextureDimension2D: number;
  /** Bytes of a buffer bound as storage. */
  maxStorageBufferBindingSize: number;
  /** Bytes of any buffer. */
  maxBufferSize: number;
}

/** A model by name and, for the tuning CNN, its hidden width. */
export interface ModelSizeConfig {
  /** The architecture. */
  model: ModelName;
  /** Hidden width of `tuning-cnn` (default 64). */
  l1?: number;
}

/** Inputs of the fully connected layer that `l1` widens (the trunk's 20x4x4 features). */
const TRUNK_FEATURES = 320;
/** The first convolution's output per image, 10 channels of 24x24: the conv models' largest. */
const CONV1_OUTPUT = 10 * 24 * 24;
/** An image, 28x28. */
const IMAGE = 28 * 28;

/** Floats of the largest single tensor the adapter holds (texture mirror and storage binding). */
export function maxTensorFloats(limits: TensorSizeLimits): number {
  return Math.min(
    limits.maxTextureDimension2D * texelsPerRowFor(limits) * 4,
    Math.floor(limits.maxStorageBufferBindingSize / 4),
    Math.floor(limits.maxBufferSize / 4),
  );
}

/**
 * Floats per image of the largest tensor a training step or an evaluation creates (activations
 * and their gradients scale with the batch; the weights do not).
 */
export function floatsPerImage(config: ModelSizeConfig): number {
  switch (config.model) {
    case "mlp":
      return IMAGE;
    case "cnn":
    case "cnn-bn":
      return CONV1_OUTPUT;
    case "tuning-cnn":
      return Math.max(CONV1_OUTPUT, config.l1 ?? 64);
    default:
      throw new Error(`floatsPerImage: unknown model "${config.model}"`);
  }
}

/** The largest batch (training or evaluation) whose tensors the adapter holds. */
export function maxBatchSize(config: ModelSizeConfig, limits: TensorSizeLimits): number {
  return Math.floor(maxTensorFloats(limits) / floatsPerImage(config));
}

/**
 * The largest hidden width `l1` of the tuning CNN whose weights (`fc1.weight`, `[l1, 320]`, the
 * largest) the adapter holds.
 */
export function maxL1(limits: TensorSizeLimits): number {
  return Math.floor(maxTensorFloats(limits) / TRUNK_FEATURES);
}
