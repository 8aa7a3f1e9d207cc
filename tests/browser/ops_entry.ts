/**
 * The browser entry of the op tests: the op families' own test files (tests/nn/*_test.ts),
 * unchanged, bundled with `node:assert` shimmed (import_map.json) and `Deno.test` collecting
 * (shims/deno_test.ts). `globalThis.opTests.run(family, policy)` runs one family's tests in the
 * page and returns pass/fail per test.
 *
 * To run another op family in the browser, add one line to `FAMILIES`: its name and its test
 * file. A test file qualifies when it uses only `Deno.test` of the Deno API (no files, no
 * subprocesses) and `node:assert`/`node:assert/strict` of Node's; the optimizers' tests run too.
 * Left out on purpose: core/models (minutes in SwiftShader), kernel_layer/texture (they count
 * compiled kernels in a fresh process, and assume Deno's storage-binding limit), optim_groups
 * and tensor_methods (temporary files, subprocesses).
 *
 * @module
 */

import { registeredTests, setFamily, testContext } from "./shims/deno_test.ts";
import { init } from "../../nn/gpu/device.ts";
import { type PolicyName, setKernelPolicy } from "../../nn/gpu/policy.ts";

/** The op families run in the browser: the name, and its test file (one line each). */
export const FAMILIES: Record<string, () => Promise<unknown>> = {
  elementwise: () => import("../nn/elementwise_test.ts"),
  pow: () => import("../nn/pow_test.ts"),
  compare: () => import("../nn/compare_test.ts"),
  unary: () => import("../nn/unary_test.ts"),
  matmul: () => import("../nn/matmul_test.ts"),
  conv2d: () => import("../nn/conv2d_test.ts"),
  max_pool: () => import("../nn/max_pool_test.ts"),
  conv_relu_pool: () => import("../nn/conv_relu_pool_test.ts"),
  conv_batch_norm: () => import("../nn/conv_batch_norm_test.ts"),
  linear_relu_dropout: () => import("../nn/linear_relu_dropout_test.ts"),
  batch_norm: () => import("../nn/batch_norm_test.ts"),
  dropout: () => import("../nn/dropout_test.ts"),
  softmax: () => import("../nn/softmax_test.ts"),
  reduce: () => import("../nn/reduce_test.ts"),
  optim: () => import("../train/optim_test.ts"),
  reduce_dim: () => import("../nn/reduce_dim_test.ts"),
  shape: () => import("../nn/shape_test.ts"),
  noncontiguous: () => import("../nn/noncontiguous_test.ts"),
  indexing: () => import("../nn/indexing_test.ts"),
  dtype: () => import("../nn/dtype_test.ts"),
  bmm: () => import("../nn/bmm_test.ts"),
  custom_op: () => import("../nn/custom_op_test.ts"),
  losses: () => import("../nn/losses_test.ts"),
  pool: () => import("../nn/pool_test.ts"),
  max_unpool: () => import("../nn/max_unpool_test.ts"),
  conv_options: () => import("../nn/conv_options_test.ts"),
  conv1d: () => import("../nn/conv1d_test.ts"),
  conv_transpose2d: () => import("../nn/conv_transpose2d_test.ts"),
  norm: () => import("../nn/norm_test.ts"),
  embedding: () => import("../nn/embedding_test.ts"),
  activations: () => import("../nn/activations_test.ts"),
  containers: () => import("../nn/containers_test.ts"),
  rnn: () => import("../nn/rnn_test.ts"),
  attention: () => import("../nn/attention_test.ts"),
  clip_grad: () => import("../train/clip_grad_test.ts"),
  lr_schedulers: () => import("../train/lr_schedulers_test.ts"),
};

/** One test's outcome in the page. */
export interface OpTestResult {
  /** The family. */
  family: string;
  /** The test's name. */
  name: string;
  /** "passed", "failed" or "ignored". */
  outcome: "passed" | "failed" | "ignored";
  /** Milliseconds it took. */
  ms: number;
  /** The error, when it failed. */
  error?: string;
}

const loaded = new Set<string>();

async function load(family: string): Promise<void> {
  if (loaded.has(family)) return;
  const importer = FAMILIES[family];
  if (!importer) throw new Error(`opTests: no family ${family}; known: ${Object.keys(FAMILIES)}`);
  setFamily(family);
  await importer();
  loaded.add(family);
}

/** Runs one family's tests under a kernel policy; returns their outcomes. */
async function run(family: string, policy: PolicyName | null = null): Promise<OpTestResult[]> {
  await init();
  await load(family);
  setKernelPolicy(policy);
  const results: OpTestResult[] = [];
  for (const test of registeredTests.filter((t) => t.family === family)) {
    const start = performance.now();
    if (test.ignore) {
      results.push({ family, name: test.name, outcome: "ignored", ms: 0 });
      continue;
    }
    try {
      await test.fn(testContext(test.name));
      results.push({ family, name: test.name, outcome: "passed", ms: performance.now() - start });
    } catch (error) {
      results.push({
        family,
        name: test.name,
        outcome: "failed",
        ms: performance.now() - start,
        error: error instanceof Error ? `${error.message}\n${error.stack ?? ""}` : String(error),
      });
    }
  }
  return results;
}

/** The adapter the page got, for the report. */
async function adapter(): Promise<Record<string, unknown>> {
  const context = await init();
  const limits: Record<string, number> = {};
  for (const key in context.limits) {
    limits[key] = (context.limits as unknown as Record<string, number>)[key];
  }
  return { ...context.adapter, limits };
}

(globalThis as Record<string, unknown>).opTests = {
  families: Object.keys(FAMILIES),
  run,
  adapter,
};
