/**
 * Test helpers: closeness checks, seeded data, and finite-difference gradient checks of GPU ops
 * against their float64 CPU references.
 */

import { AssertionError } from "node:assert";
import { memoryStats } from "../nn/gpu/buffer_pool.ts";
import { init } from "../nn/gpu/device.ts";
import { sync } from "../nn/gpu/stream.ts";
import { kernelPolicy, type PolicyName, setKernelPolicy } from "../nn/gpu/policy.ts";
import { Rng } from "../nn/random.ts";
import { tidy } from "../nn/scope.ts";
import { type Tensor, tensor } from "../nn/tensor.ts";

/** Initialises the device once per test module; call at the top of GPU tests. */
export async function gpuReady(): Promise<void> {
  await init();
}

/**
 * Runs `fn` under the kernel policy `name` (forced, whichever the adapter has), then puts back
 * the policy that was in force: the browser runner's, or the adapter's.
 */
export async function withKernelPolicy(
  name: PolicyName,
  fn: () => Promise<void>,
): Promise<void> {
  const previous = kernelPolicy().name;
  setKernelPolicy(name);
  try {
    await fn();
  } finally {
    setKernelPolicy(previous);
  }
}

/**
 * Runs `step` (awaited) `warmup` times, then `repeats` more, and asserts that the repeats left
 * nothing behind: the same live buffers and bytes, and no GPUBuffer created.
 */
export async function assertSteadyMemory(
  step: () => unknown,
  { warmup = 3, repeats = 20 }: { warmup?: number; repeats?: number } = {},
): Promise<void> {
  for (let i = 0; i < warmup; i++) await step();
  await sync();
  const before = memoryStats();
  for (let i = 0; i < repeats; i++) await step();
  await sync();
  const after = memoryStats();
  const counts = (m: typeof before) => [m.liveBuffers, m.liveBytes, m.buffersCreated];
  if (counts(after).join() !== counts(before).join()) {
    throw new AssertionError({
      message: `memory grew over ${repeats} steps: [live buffers, live bytes, buffers created] ` +
        `went from [${counts(before)}] to [${counts(after)}]`,
    });
  }
}

/** Uniform values in [low, high) from a seed, as float64. */
export function randomArray(length: number, seed: number, low = -1, high = 1): Float64Array {
  const rng = new Rng(seed);
  const values = new Float64Array(length);
  for (let i = 0; i < length; i++) values[i] = low + (high - low) * rng.next();
  return values;
}

/** Integers in [0, n) from a seed. */
export function randomInts(length: number, n: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length }, () => rng.int(n));
}

/** Tolerances: |actual - expected| <= atol + rtol * |expected|. */
export interface Tolerance {
  /** Absolute tolerance. */
  atol?: number;
  /** Relative tolerance. */
  rtol?: number;
  /** Whether NaN equals NaN (default false: any NaN fails). */
  equalNan?: boolean;
}

/** Asserts that two arrays have the same length and are close element by element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: Tolerance = {},
  what = "values",
): void {
  const { atol = 1e-5, rtol = 1e-4, equalNan = false } = tolerance;
  const close = (a: number, e: number) =>
    a === e || // equal infinities, whose difference is NaN
    Math.abs(a - e) <= atol + rtol * Math.abs(e) ||
    (equalNan && Number.isNaN(a) && Number.isNaN(e));
  if (actual.length !== expected.length) {
    throw new AssertionError({
      message: `${what}: length ${actual.length} != expected ${expected.length}`,
    });
  }
  let worst = -1, worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    if (close(actual[i], expected[i])) continue;
    const excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (worst < 0 || !(excess <= worstExcess)) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    const bad = Array.from({ length: actual.length }, (_, i) => i)
      .filter((i) => !close(actual[i], expected[i])).length;
    throw new AssertionError({
      message: `${what}: ${bad} of ${actual.length} differ beyond atol ${atol} rtol ${rtol}; ` +
        `worst at [${worst}]: ${actual[worst]} vs expected ${expected[worst]}`,
    });
  }
}

/** One input of a gradient check. */
export interface GradInput {
  /** Its values (row-major). */
  data: Float64Array;
  /** Its shape. */
  shape: number[];
  /** Whether to check its gradient (default true). */
  check?: boolean;
}

/** What `gradCheck` compares. */
export interface GradCheckCase {
  /** The op's float64 CPU reference forward. */
  reference: (inputs: Float64Array[]) => Float64Array;
  /** The GPU op under test. */
  gpu: (inputs: Tensor[]) => Tensor;
  /** The inputs. */
  inputs: GradInput[];
  /** Finite-difference step (default 1e-3). */
  eps?: number;
  /** Tolerance of the GPU forward against the reference. */
  forwardTolerance?: Tolerance;
  /** Tolerance of GPU gradients against the finite differences. */
  gradTolerance?: Tolerance;
  /** Seed of the random output weights. */
  seed?: number;
}

/**
 * The gradient with respect to input `k` of L = sum(reference(inputs) * weights), by central
 * finite differences (float64) with step `eps`.
 */
export function finiteDifferences(
  reference: (inputs: Float64Array[]) => ArrayLike<number>,
  inputs: readonly Float64Array[],
  k: number,
  weights: ArrayLike<number>,
  eps = 1e-3,
): Float64Array {
  const values = inputs.map((input) => Float64Array.from(input));
  const objective = () => {
    const out = reference(values);
    let total = 0;
    for (let i = 0; i < out.length; i++) total += out[i] * weights[i];
    return total;
  };
  const numeric = new Float64Array(values[k].length);
  for (let i = 0; i < numeric.length; i++) {
    const original = values[k][i];
    values[k][i] = original + eps;
    const plus = objective();
    values[k][i] = original - eps;
    const minus = objective();
    values[k][i] = original;
    numeric[i] = (plus - minus) / (2 * eps);
  }
  return numeric;
}

/**
 * Checks an op's GPU forward against its CPU reference, and its GPU gradients against central
 * finite differences of the reference (float64) of L = sum(output * R) for a random R.
 */
export async function gradCheck(testCase: GradCheckCase): Promise<void> {
  const { reference, inputs, eps = 1e-3 } = testCase;
  const expected = reference(inputs.map((input) => input.data));
  const weights = randomArray(expected.length, testCase.seed ?? 99);
  const gpuInputs = inputs.map((input) =>
    tensor(Float32Array.from(input.data), input.shape, { requiresGrad: input.check !== false })
  );
  const outGrad = tensor(Float32Array.from(weights), [expected.length]);
  // Forward and backward in one tidy: the intermediates of a composed op live until backward.
  const out = tidy(() => {
    const result = testCase.gpu(gpuInputs);
    if (result.requiresGrad) result.backward({ grad: outGrad.view(result.shape) });
    return result;
  });
  assertClose(await out.toArray(), expected, testCase.forwardTolerance ?? {}, "forward");
  for (const [k, input] of inputs.entries()) {
    if (input.check === false) continue;
    const numeric = finiteDifferences(
      reference,
      inputs.map((other) => other.data),
      k,
      weights,
      eps,
    );
    const grad = gpuInputs[k].grad;
    if (!grad) throw new AssertionError({ message: `input ${k}: no gradient was computed` });
    assertClose(
      await grad.toArray(),
      numeric,
      testCase.gradTolerance ?? { atol: 1e-3, rtol: 1e-2 },
      `gradient of input ${k}`,
    );
  }
  for (const input of gpuInputs) {
    input.grad?.dispose();
    input.dispose();
  }
  out.dispose();
  outGrad.dispose();
}

/** Fails naming the first element that differs (as Object.is: NaN equals NaN, -0 is not 0). */
export function assertSameValues(actual: Float32Array, expected: Float32Array, what: string): void {
  if (actual.length !== expected.length) {
    throw new AssertionError({
      message: `${what}: ${actual.length} elements instead of ${expected.length}`,
    });
  }
  const differing = actual.findIndex((value, i) => !Object.is(value, expected[i]));
  if (differing >= 0) {
    const count = actual.filter((value, i) => !Object.is(value, expected[i])).length;
    throw new AssertionError({
      message:
        `${what}: ${count} of ${actual.length} elements differ, the first at ${differing}: ` +
        `${actual[differing]} instead of ${expected[differing]}`,
    });
  }
}
