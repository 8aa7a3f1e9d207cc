/**
 * Linear → LogSoftmax (a classifier's head) in one kernel where the matmul's lanes hold whole rows
 * (few classes): the matmul writes the logits and their rows' log_softmax, and both are recorded
 * as `linear` and `logSoftmax` record them, so that `nllLoss` still takes its fused backward.
 *
 * @module
 */

import { linear, linearWithEpilogue, logSoftmaxEpilogueApplies } from "./matmul.ts";
import { logSoftmax, recordLogSoftmax } from "./softmax.ts";
import { Tensor } from "../tensor.ts";

/**
 * logSoftmax(linear(x, weight, bias)) over the last dimension, the same values and gradients, in
 * one dispatch for an input [rows, in] and few outputs (else as the two ops).
 */
export function linearLogSoftmax(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  const fused = x.rank === 2 && weight.rank === 2 && x.dtype === "f32" &&
    weight.dtype === "f32" && x.shape[1] === weight.shape[1] &&
    logSoftmaxEpilogueApplies(x.shape[0], weight.shape[1], weight.shape[0]);
  if (!fused) return logSoftmax(linear(x, weight, bias));
  const logProbs = Tensor.empty([x.shape[0], weight.shape[0]]);
  const logits = linearWithEpilogue(x, weight, { bias, logProbs });
  return recordLogSoftmax(logits, logProbs);
}
