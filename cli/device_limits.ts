/**
 * Settings checked against what the adapter holds, once `init()` has run and before any data
 * is loaded or weights allocated: a batch size or `l1` too large for one tensor is a usage error
 * naming the flag and the largest value allowed, not a texture error after an epoch.
 *
 * @module
 */

import { gpu } from "../nn/gpu/device.ts";
import { maxBatchSize, maxL1, type ModelSizeConfig } from "../nn/model_limits.ts";
import { UsageError } from "./args.ts";

/** Throws `UsageError` when `--<flag> value` is a larger batch than the adapter holds. */
export function checkBatchSize(
  command: string,
  config: ModelSizeConfig,
  flag: string,
  value: number,
): void {
  const largest = maxBatchSize(config, gpu().limits);
  if (value > largest) {
    throw new UsageError(
      `${command}: --${flag} ${value}: this adapter holds batches of at most ${largest} images ` +
        `for ${config.model}${config.l1 === undefined ? "" : ` (l1 ${config.l1})`}: ` +
        `expected an integer from 1 to ${largest}`,
    );
  }
}

/**
 * Throws `UsageError` when the tuning CNN's `l1` (from `source`: `--l1` or a file's metadata)
 * makes weights larger than the adapter holds.
 */
export function checkL1(command: string, l1: number, source: string): void {
  const largest = maxL1(gpu().limits);
  if (l1 > largest) {
    throw new UsageError(
      `${command}: ${source} ${l1}: fc1's weights [${l1}, 320] are larger than this adapter ` +
        `holds: expected an integer from 1 to ${largest}`,
    );
  }
}

/** `checkBatchSize` for the model among `configs` that holds the smallest batches (if any). */
export function checkBatchSizeForAll(
  command: string,
  configs: readonly ModelSizeConfig[],
  flag: string,
  value: number,
): void {
  if (configs.length === 0) return;
  const limits = gpu().limits;
  const tightest = configs.reduce((a, b) =>
    maxBatchSize(b, limits) < maxBatchSize(a, limits) ? b : a
  );
  checkBatchSize(command, tightest, flag, value);
}
