/**
 * `testOp`: one op on the GPU against its float64 reference, forward and backward (after tinygrad's
 * `helper_test_op`). Seeded inputs of the given shapes go through both; the outputs are compared,
 * then a seeded random output gradient is backpropagated through the GPU op and compared, input by
 * input, with the reference backward (or, without one, with central finite differences of the
 * reference forward). When both exist and the inputs are small, the reference backward is itself
 * checked against finite differences, so a large shape needs no finite differences of its own.
 *
 * @module
 */

import { AssertionError } from "node:assert";
import assert from "node:assert/strict";
import { type DType, type Tensor, tensor } from "../../nn/tensor.ts";
import { tidy } from "../../nn/scope.ts";
import { pooledBuffers } from "../../nn/gpu/buffer_pool.ts";
import { bufferVersion } from "../../nn/gpu/stream.ts";
import { fillWords } from "../../nn/ops/fill.ts";
import { transpose } from "../../nn/ops/layout.ts";
import {
  assertClose,
  finiteDifferences,
  randomArray,
  randomInts,
  type Tolerance,
} from "../testing.ts";

/** One input of `testOp`: a shape, or a shape with options. */
export type OpInput = readonly number[] | OpInputSpec;

/** An input of `testOp` with options. */
export interface OpInputSpec {
  /** Its shape. */
  shape: readonly number[];
  /** Its dtype: `f32` (default) or `i32` (never differentiated). */
  dtype?: "f32" | "i32";
  /** Its values (row-major); default seeded uniform values in [low, high), integers for `i32`. */
  data?: ArrayLike<number>;
  /** Lowest random value (default -1; 0 for `i32`). */
  low?: number;
  /** Bound of the random values, excluded (default 1; for `i32`, required). */
  high?: number;
  /** Whether to differentiate it and check its gradient (default: true for `f32`). */
  grad?: boolean;
  /**
   * Hand the op the result of `transpose(leaf, -2, -1)` instead of a fresh tensor (rank >= 2):
   * the "non-contiguous" input of PyTorch's tests. The leaf holds the same values with its last
   * two dimensions swapped; its gradient, transposed back, is what is checked.
   */
  transposed?: boolean;
}

/** The inputs as the references see them. */
export type RefInputs = Float64Array[];

/** What `testOp` checks. */
export interface OpTestCase {
  /** Named in every failure message. */
  name: string;
  /** The inputs: shapes, or shapes with options. */
  inputs: readonly OpInput[];
  /** The GPU op under test. */
  gpu: (inputs: Tensor[]) => Tensor;
  /** The float64 reference forward; a number stands for a scalar output. */
  reference: (inputs: RefInputs) => ArrayLike<number> | number;
  /**
   * The float64 reference backward: given the inputs and the output gradient, the gradient of
   * each input (null where there is none). Without it, gradients are checked against central
   * finite differences of `reference`.
   */
  backward?: (inputs: RefInputs, grad: Float64Array) => (ArrayLike<number> | null)[];
  /** The output's shape, when it should be checked. */
  outputShape?: readonly number[];
  /** The output's dtype (default `f32`); non-f32 outputs must equal the reference exactly. */
  outputDtype?: DType;
  /** Tolerance of the forward (default atol 1e-5, rtol 1e-4; NaN equals NaN). */
  forwardTolerance?: Tolerance;
  /**
   * Tolerance of the GPU gradients, one for all inputs or one per input (default atol 1e-5, rtol
   * 1e-4 against `backward`; atol 1e-3, rtol 1e-2 against finite differences). `backward` itself
   * must be within atol 1e-5, rtol 1e-3 of the finite differences.
   */
  gradTolerance?: Tolerance | readonly Tolerance[];
  /** Finite-difference step (default 1e-3). */
  eps?: number;
  /** Largest total input size checked by finite differences (default 2,000). */
  finiteDifferenceLimit?: number;
  /** Seed of the inputs (input k uses seed + k) and, with seed + 99, of the output gradient. */
  seed?: number;
  /**
   * Call `backward()` without a gradient (a scalar output, whose gradient is then 1) instead of
   * with a random one.
   */
  implicitGrad?: boolean;
}

function spec(input: OpInput): OpInputSpec {
  return "shape" in input ? input : { shape: input as readonly number[] };
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** `shape` with its last two dimensions swapped. */
function swapLast(shape: readonly number[]): number[] {
  const out = [...shape];
  [out[out.length - 2], out[out.length - 1]] = [out[out.length - 1], out[out.length - 2]];
  return out;
}

/** Row-major `values` of `shape`, laid out as the tensor of `swapLast(shape)` holding them. */
function swapLastValues(values: ArrayLike<number>, shape: readonly number[]): Float64Array {
  const rows = shape[shape.length - 2], cols = shape[shape.length - 1];
  const out = new Float64Array(values.length);
  for (let base = 0; base < values.length; base += rows * cols) {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) out[base + c * rows + r] = values[base + r * cols + c];
    }
  }
  return out;
}

/** NaN as f32 bits (-1 as i32): what a pooled buffer holds until a kernel writes it. */
const POISON_BITS = 0xffffffff;
/** Each pooled buffer's version (`bufferVersion`) right after it was poisoned. */
const poisonedAt = new WeakMap<GPUBuffer, number>();

/**
 * Fills every buffer in the pool written since it was last poisoned with NaN bits, so that an
 * output a kernel leaves partly unwritten shows NaN (or -1) rather than an earlier test's result
 * that happened to be right.
 */
function poisonPool(): void {
  for (const buffer of pooledBuffers()) {
    if (poisonedAt.get(buffer) === bufferVersion(buffer)) continue;
    fillWords(buffer, buffer.size / 4, POISON_BITS);
    poisonedAt.set(buffer, bufferVersion(buffer));
  }
}

/** Runs one `OpTestCase`; throws an AssertionError naming the case and what differed. */
export async function testOp(testCase: OpTestCase): Promise<void> {
  const { name, seed = 1, eps = 1e-3 } = testCase;
  poisonPool();
  const specs = testCase.inputs.map(spec);
  const values: RefInputs = specs.map((input, k) => {
    const size = sizeOf(input.shape);
    if (input.data !== undefined) {
      assert.equal(input.data.length, size, `${name}: input ${k}: data length`);
      return Float64Array.from(input.data);
    }
    if (input.dtype === "i32") {
      if (input.high === undefined) throw new Error(`${name}: input ${k}: i32 needs high`);
      const low = input.low ?? 0;
      return Float64Array.from(randomInts(size, input.high - low, seed + k), (v) => v + low);
    }
    return randomArray(size, seed + k, input.low ?? -1, input.high ?? 1);
  });
  const differentiable = specs.map((input) => input.dtype !== "i32" && input.grad !== false);
  const raw = testCase.reference(values);
  const expected = typeof raw === "number" ? Float64Array.of(raw) : Float64Array.from(raw);
  const outputDtype = testCase.outputDtype ?? "f32";
  // Inputs of an op with no f32 output (argmax) are never differentiated.
  const backward = differentiable.some((d) => d) && outputDtype === "f32";
  const outGradValues = testCase.implicitGrad
    ? new Float64Array(expected.length).fill(1)
    : randomArray(expected.length, seed + 99);

  const gpuInputs = specs.map((input, k) => {
    if (input.dtype === "i32") {
      return tensor(Int32Array.from(values[k]), input.shape, { dtype: "i32" });
    }
    if (input.transposed && input.shape.length < 2) {
      throw new Error(`${name}: input ${k}: transposed needs rank >= 2`);
    }
    const shape = input.transposed ? swapLast(input.shape) : input.shape;
    const data = input.transposed ? swapLastValues(values[k], input.shape) : values[k];
    return tensor(Float32Array.from(data), shape, { requiresGrad: backward && differentiable[k] });
  });
  const outGrad = tensor(Float32Array.from(outGradValues), [expected.length]);
  try {
    // Forward and backward in one tidy: the intermediates of a composed op live until backward.
    const out = tidy(() => {
      const opInputs = gpuInputs.map((input, k) =>
        specs[k].transposed ? transpose(input, -2, -1) : input
      );
      const result = testCase.gpu(opInputs);
      if (backward) {
        if (!result.requiresGrad) {
          throw new AssertionError({ message: `${name}: the output does not require a gradient` });
        }
        if (testCase.implicitGrad) result.backward();
        else result.backward({ grad: outGrad.view(result.shape) });
      }
      return result;
    });
    try {
      if (testCase.outputShape) {
        assert.deepEqual(out.shape, [...testCase.outputShape], `${name}: output shape`);
      }
      assert.equal(out.dtype, outputDtype, `${name}: output dtype`);
      if (outputDtype === "f32") {
        const tolerance = { equalNan: true, ...testCase.forwardTolerance };
        assertClose(await out.toArray(), expected, tolerance, `${name}: forward`);
      } else {
        assert.deepEqual(
          Array.from(await out.toTypedArray()),
          Array.from(expected),
          `${name}: forward`,
        );
      }
    } finally {
      out.dispose();
    }
    if (!backward) return;

    const reference = (inputs: RefInputs) => {
      const result = testCase.reference(inputs);
      return typeof result === "number" ? [result] : result;
    };
    const totalSize = values.reduce((total, v) => total + v.length, 0);
    const finite = totalSize <= (testCase.finiteDifferenceLimit ?? 2000);
    const analytic = testCase.backward?.(values, outGradValues);
    const gradTolerance = (k: number): Tolerance | undefined => {
      const tolerance = testCase.gradTolerance;
      return Array.isArray(tolerance) ? tolerance[k] : tolerance as Tolerance | undefined;
    };
    for (const [k, input] of gpuInputs.entries()) {
      if (!differentiable[k]) continue;
      const grad = input.grad;
      if (!grad) throw new AssertionError({ message: `${name}: input ${k}: no gradient` });
      const leafGrad = await grad.toArray();
      const actual = specs[k].transposed
        ? swapLastValues(leafGrad, swapLast(specs[k].shape))
        : leafGrad;
      const numeric = finite || !analytic
        ? finiteDifferences(reference, values, k, outGradValues, eps)
        : null;
      const expectedGrad = analytic?.[k];
      if (analytic && !expectedGrad) {
        throw new AssertionError({ message: `${name}: backward gives no gradient of input ${k}` });
      }
      if (expectedGrad) {
        assertClose(actual, expectedGrad, gradTolerance(k) ?? {}, `${name}: grad ${k}`);
        if (numeric) {
          assertClose(
            expectedGrad,
            numeric,
            { atol: 1e-5, rtol: 1e-3 },
            `${name}: reference backward of input ${k} vs finite differences`,
          );
        }
      } else {
        assertClose(
          actual,
          numeric!,
          gradTolerance(k) ?? { atol: 1e-3, rtol: 1e-2 },
          `${name}: grad ${k} vs finite differences`,
        );
      }
    }
  } finally {
    for (const input of gpuInputs) {
      input.grad?.dispose();
      input.dispose();
    }
    outGrad.dispose();
  }
}
