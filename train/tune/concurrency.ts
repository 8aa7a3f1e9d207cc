/**
 * How many trials to run at once on one WebGPU adapter.
 *
 * All trials share one process, one JavaScript thread and one GPU queue. Concurrency only helps
 * when the GPU would otherwise idle while JavaScript encodes the next step or waits on a readback,
 * i.e. on a hardware GPU with small models (the tuning CNN at batch 32-128 is dispatch-bound).
 * On a software adapter (llvmpipe, lavapipe, SwiftShader, WARP) the "GPU" is the same CPU cores
 * that already run every kernel on all threads: a second trial only competes for them and doubles
 * the memory. So: 1 on software adapters, 2 on hardware ones (one trial's CPU-side encoding
 * overlaps the other's kernels; beyond 2 the single JS thread is the bottleneck). These are
 * reasoned defaults, not measurements; pass `maxConcurrent` to override. `tune()` itself defaults
 * to 1, which also makes every run reproducible without relying on the deterministic ordering.
 *
 * This asks the adapter, not the kernel policy (`nn/gpu/policy.ts`): the policy says how to plan
 * kernels and can be forced to `hardware` on llvmpipe (the tests do), which would not free any
 * CPU core for a second trial.
 *
 * @module
 */

/** The adapter facts the suggestion uses (a subset of wgtorch's `AdapterReport`). */
export interface AdapterFacts {
  /** The adapter's description, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  description?: string;
  /** True for software adapters. */
  isFallbackAdapter?: boolean;
}

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|microsoft basic render|warp/i;

/** 1 for a software adapter, 2 for a hardware GPU (see the module notes). */
export function suggestMaxConcurrent(adapter: AdapterFacts): number {
  const software = adapter.isFallbackAdapter === true || SOFTWARE.test(adapter.description ?? "");
  return software ? 1 : 2;
}
