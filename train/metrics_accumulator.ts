/**
 * Per-epoch loss and accuracy sums kept on the GPU: after each batch, one small fused kernel adds
 * `loss · N` (the batch's summed NLL) and the batch's correct count into a kept 8-float buffer,
 * in place, and flags non-finite losses. The optimizer's update kernels (`parameterWatch()`) and
 * `checkBuffers` flag parameters and buffers (batch-norm running statistics) that stop being
 * finite into the same buffer. Nothing is read back until `read()`, which callers do once per
 * epoch (and every few seconds for a progress bar).
 *
 * Buffer layout (f32): `[0]` summed NLL, `[1]` correct predictions, `[2]` samples, `[3]` batches,
 * `[4]` batches whose loss was NaN or ±Inf, `[5]` index of the first such batch (valid when
 * `[4] > 0`); `[6]` 1 once a parameter was NaN or ±Inf after an optimizer step, `[7]` the index
 * of the first such batch, `[8]` the index of the parameter (in the optimizer's list); `[9..11]`
 * the same for buffers (index in the list given to `checkBuffers`).
 *
 * @module
 */

import { rowArgmaxWgsl, workgroupSumWgsl } from "../nn/ops/reduce.ts";
import { type BindingSpec, type KernelSpec, runKernel } from "../nn/gpu/program.ts";
import { u32 } from "../nn/gpu/kernel.ts";
import { keep } from "../nn/scope.ts";
import { readBuffer, writeBuffer } from "../nn/gpu/stream.ts";
import { formatShape, Tensor } from "../nn/tensor.ts";
import type { FiniteWatch } from "./optim/optimizer.ts";

const SLOTS = 12;
/** First slots of the parameter and buffer flags (see the layout above). */
const PARAMETER_FLAGS = 6;
const BUFFER_FLAGS = 9;
/** Most tensors one `checkBuffers` dispatch binds (with the sums: 8 storage buffers). */
const BUFFERS_PER_DISPATCH = 7;

/** What an accumulator holds at one point of the command stream. */
export interface AccumulatorSnapshot {
  /** Sum of the per-sample NLL over the batches so far. */
  lossSum: number;
  /** Correctly classified samples so far. */
  correct: number;
  /** Samples so far. */
  samples: number;
  /** Batches so far. */
  batches: number;
  /** Batches whose loss was NaN or infinite. */
  nonFinite: number;
  /** 0-based index of the first batch with a non-finite loss (-1 when none). */
  firstNonFinite: number;
  /** Where a parameter first became non-finite after an optimizer step (null: never). */
  parameters: NonFiniteTensor | null;
  /** Where a buffer checked by `checkBuffers` first became non-finite (null: never). */
  buffers: NonFiniteTensor | null;
}

/** The first tensor seen NaN or infinite, and when. */
export interface NonFiniteTensor {
  /** 0-based index of the batch after which it was seen. */
  batch: number;
  /** Its index: in the optimizer's parameters, or in the list given to `checkBuffers`. */
  index: number;
}

/**
 * WGSL statements for a kernel that binds the sums as `array<f32>` named `flags`: records that
 * tensor `index` (a WGSL u32 expression) is non-finite after the last batch added, unless one
 * was already recorded. Invocations may run it concurrently: they write the same values.
 */
function markWgsl(first: number, flags: string, index: string): string {
  return /* wgsl */ `if (${flags}[${first}] == 0.0) {
      ${flags}[${first + 1}] = ${flags}[3] - 1.0;
      ${flags}[${first + 2}] = f32(${index});
    }
    ${flags}[${first}] = 1.0;`;
}

/** Flags the first of `sizes.length` tensors that holds NaN or ±Inf (index `base` + k). */
const CHECK_FINITE: KernelSpec<{ sizes: readonly number[]; base: number }> = {
  name: "check_finite",
  key: ({ sizes, base }) => `${sizes.join("_")}_from${base}`,
  bindings: ({ sizes }) => [
    ...sizes.map((_, k): BindingSpec => ({ name: `t${k}`, role: "read" })),
    { name: "acc", role: "write" },
  ],
  plan: (_, policy) => ({ workgroupSize: policy.elementwiseWorkgroup, groups: 1 }),
  prelude: () => "var<workgroup> first: atomic<u32>;",
  // Each invocation tests a strided share of every tensor; the workgroup keeps the first
  // tensor (lowest index) that holds a non-finite value.
  body: ({ sizes, base }, { plan }) => /* wgsl */ `
  if (lid == 0u) { atomicStore(&first, 0xffffffffu); }
  workgroupBarrier();
  var found = 0xffffffffu;${
    sizes.map((size, k) => /* wgsl */ `
  for (var i = lid; i < ${u32(size)}; i += ${u32(plan.workgroupSize)}) {
    if ((bitcast<u32>(t${k}[i]) & 0x7f800000u) == 0x7f800000u) { found = min(found, ${u32(k)}); }
  }`).join("")
  }
  atomicMin(&first, found);
  workgroupBarrier();
  let bad = atomicLoad(&first);
  if (lid == 0u && bad != 0xffffffffu) {
    ${markWgsl(BUFFER_FLAGS, "acc", `${u32(base)} + bad`)}
  }`,
};

/** Adds a batch's summed loss and correct count to the sums, flagging a non-finite loss. */
const ACCUMULATE: KernelSpec<{ rows: number; classes: number }> = {
  name: "accumulate_metrics",
  key: ({ rows, classes }) => `${rows}x${classes}`,
  bindings: () => [
    { name: "loss", role: "read" },
    { name: "x", role: "read" },
    { name: "labels", role: "read", type: "i32" },
    { name: "acc", role: "write" },
  ],
  plan: (_, policy) => ({ workgroupSize: policy.elementwiseWorkgroup, groups: 1 }),
  prelude: ({ rows, classes }, { plan }) => /* wgsl */ `
const ROWS: u32 = ${u32(rows)};
const C: u32 = ${u32(classes)};
${workgroupSumWgsl(plan.workgroupSize)}

${rowArgmaxWgsl(classes)}`,
  body: (_, { plan }) => /* wgsl */ `
  var count = 0.0;
  for (var row = lid; row < ROWS; row += ${u32(plan.workgroupSize)}) {
    if (i32(rowArgmax(row * C)) == labels[row]) { count += 1.0; }
  }
  let total = workgroupSum(lid, count);
  if (lid == 0u) {
    let l = loss[0];
    // Bit test, not isNan/isInf: WGSL lets compilers assume floats are finite.
    if ((bitcast<u32>(l) & 0x7f800000u) == 0x7f800000u) {
      if (acc[4] == 0.0) { acc[5] = acc[3]; }
      acc[4] += 1.0;
    }
    acc[0] += l * f32(ROWS);
    acc[1] += total;
    acc[2] += f32(ROWS);
    acc[3] += 1.0;
  }`,
};

function flagged(v: Float32Array, first: number): NonFiniteTensor | null {
  return v[first] > 0 ? { batch: v[first + 1], index: v[first + 2] } : null;
}

/** Loss and accuracy sums of an epoch, accumulated on the GPU (see the module notes). */
export class MetricsAccumulator {
  readonly #sums: Tensor;

  /** A zeroed accumulator (call `init()` first). It lives until `dispose()`. */
  constructor() {
    this.#sums = keep(Tensor.empty([SLOTS]));
    this.reset();
  }

  /** Zeroes the sums (an upload ordered after every dispatch encoded so far). */
  reset(): void {
    writeBuffer(this.#sums.buffer, new Float32Array(SLOTS));
  }

  /**
   * Encodes one dispatch adding a batch: `loss` is the batch-mean NLL (shape []), `logProbs`
   * [N, C] the model's output and `labels` [N] (i32) the targets. Nothing is read back.
   */
  add(loss: Tensor, logProbs: Tensor, labels: Tensor): void {
    if (loss.size !== 1 || loss.dtype !== "f32") {
      throw new Error(
        `MetricsAccumulator.add: loss must be an f32 scalar, got ${loss.dtype} ${
          formatShape(loss.shape)
        }`,
      );
    }
    if (logProbs.rank !== 2 || labels.rank !== 1 || labels.shape[0] !== logProbs.shape[0]) {
      throw new Error(
        `MetricsAccumulator.add: scores ${formatShape(logProbs.shape)} and labels ` +
          `${formatShape(labels.shape)} do not match`,
      );
    }
    if (labels.dtype !== "i32") throw new Error("MetricsAccumulator.add: labels must be i32");
    const [rows, classes] = logProbs.shape;
    runKernel(ACCUMULATE, { rows, classes }, { loss, x: logProbs, labels, acc: this.#sums });
  }

  /**
   * Where an optimizer's update kernels flag a parameter that became NaN or infinite
   * (`optimizer.watchFinite(accumulator.parameterWatch())`); the flag names the batch last
   * added, so call `add` before `optimizer.step()`.
   */
  parameterWatch(): FiniteWatch {
    return {
      tensor: this.#sums,
      mark: (index) => markWgsl(PARAMETER_FLAGS, "watch_flags", u32(index)),
    };
  }

  /**
   * Encodes a check of `tensors` (f32; e.g. a model's batch-norm running statistics) after the
   * batch last added: the first that holds NaN or ±Inf is flagged (`buffers` of the snapshot).
   * One small dispatch per 7 tensors; nothing is read back.
   */
  checkBuffers(tensors: readonly Tensor[]): void {
    for (const [i, t] of tensors.entries()) {
      if (t.dtype !== "f32") {
        throw new Error(`MetricsAccumulator.checkBuffers: tensor ${i} must be f32, got ${t.dtype}`);
      }
    }
    for (let base = 0; base < tensors.length; base += BUFFERS_PER_DISPATCH) {
      const chunk = tensors.slice(base, base + BUFFERS_PER_DISPATCH);
      const resources: Record<string, Tensor> = { acc: this.#sums };
      for (const [k, t] of chunk.entries()) resources[`t${k}`] = t;
      runKernel(CHECK_FINITE, { sizes: chunk.map((t) => t.size), base }, resources);
    }
  }

  /**
   * Reads the sums as they stand after every dispatch encoded so far. The copy is encoded (and
   * submitted) now, synchronously, so work encoded after this call is not included: a caller may
   * keep encoding and await the promise later.
   */
  read(): Promise<AccumulatorSnapshot> {
    return readBuffer(this.#sums.buffer, SLOTS * 4).then((bytes) => {
      const v = new Float32Array(bytes);
      return {
        lossSum: v[0],
        correct: v[1],
        samples: v[2],
        batches: v[3],
        nonFinite: v[4],
        firstNonFinite: v[4] > 0 ? v[5] : -1,
        parameters: flagged(v, PARAMETER_FLAGS),
        buffers: flagged(v, BUFFER_FLAGS),
      };
    });
  }

  /** Frees the buffer. */
  dispose(): void {
    this.#sums.dispose();
  }
}
