/**
 * A confusion matrix accumulated on the GPU: one dispatch per batch adds each row's
 * (label, prediction) pair to a kept `C x C` u32 count matrix with atomics; `read()` brings it
 * back once, at the end of an evaluation.
 *
 * @module
 */

import { u32 } from "../nn/gpu/kernel.ts";
import { type KernelSpec, runKernel } from "../nn/gpu/program.ts";
import { keep } from "../nn/scope.ts";
import { readBuffer, writeBuffer } from "../nn/gpu/stream.ts";
import { Tensor } from "../nn/tensor.ts";

/** One lane per row: its argmax and label pick the count to increment. */
const CONFUSION: KernelSpec<{ rows: number; classes: number }> = {
  name: "confusion",
  key: ({ rows, classes }) => `${rows}x${classes}`,
  bindings: () => [
    { name: "x", role: "read" },
    { name: "labels", role: "read", type: "i32" },
    { name: "counts", role: "write", type: "atomic<u32>" },
  ],
  plan: ({ rows }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(rows / policy.elementwiseWorkgroup),
  }),
  prelude: ({ rows, classes }) =>
    `const ROWS: u32 = ${u32(rows)};
const C: u32 = ${u32(classes)};`,
  body: (_, { plan }) => /* wgsl */ `
  let row = group * ${u32(plan.workgroupSize)} + lid;
  if (row >= ROWS) { return; }
  let base = row * C;
  var best = x[base];
  var arg = 0u;
  for (var j = 1u; j < C; j++) {
    let v = x[base + j];
    if (v > best) { best = v; arg = j; }
  }
  let label = labels[row];
  if (label >= 0 && u32(label) < C) { atomicAdd(&counts[u32(label) * C + arg], 1u); }`,
};

/** Counts of (true class, predicted class) pairs, kept on the GPU. */
export class ConfusionAccumulator {
  /** Number of classes. */
  readonly classes: number;
  readonly #counts: Tensor;

  /** A zeroed `classes x classes` matrix (call `init()` first). */
  constructor(classes: number) {
    this.classes = classes;
    this.#counts = keep(Tensor.empty([classes * classes], "i32"));
    writeBuffer(this.#counts.buffer, new Uint32Array(classes * classes));
  }

  /** Encodes one dispatch adding a batch's scores [N, C] and i32 labels [N]. */
  add(scores: Tensor, labels: Tensor): void {
    const [rows, classes] = scores.shape;
    if (classes !== this.classes || labels.shape[0] !== rows || labels.dtype !== "i32") {
      throw new Error(
        `ConfusionAccumulator.add: scores [${scores.shape}] / labels [${labels.shape}] ` +
          `do not fit ${this.classes} classes`,
      );
    }
    runKernel(CONFUSION, { rows, classes }, { x: scores, labels, counts: this.#counts });
  }

  /** The matrix: `matrix[label][prediction]` = count. Waits for the GPU. */
  async read(): Promise<number[][]> {
    const n = this.classes;
    const flat = new Uint32Array(await readBuffer(this.#counts.buffer, n * n * 4));
    return Array.from({ length: n }, (_, i) => Array.from(flat.subarray(i * n, (i + 1) * n)));
  }

  /** Frees the buffer. */
  dispose(): void {
    this.#counts.dispose();
  }
}

/** Per-class accuracy (recall) from a confusion matrix: correct / total of each true class. */
export function perClassAccuracy(matrix: readonly (readonly number[])[]): number[] {
  return matrix.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total > 0 ? row[i] / total : NaN;
  });
}
