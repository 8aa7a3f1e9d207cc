/**
 * `deno task bench`: training and evaluation throughput of the study's models, and GFLOP/s of
 * their matmul and conv2d shapes, for wgtorch and for TensorFlow.js (WebGPU backend) in the same
 * process on the same adapter, side by side with the ratio.
 *
 * Usage: `deno task bench [--json FILE] [--no-tfjs] [--models mlp,cnn,cnn-bn] [--batches 32,128]
 * [--windows N] [--profile]`
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import {
  conv2d,
  createModel,
  describeAdapter,
  init,
  matmul,
  memoryStats,
  type ModelName,
  nllLoss,
  noGrad,
  randUniform,
  startProfiling,
  stopProfiling,
  sync,
  type Tensor,
  tensor,
  tidy,
} from "../mod.ts";
import { Adam } from "../train/optim/adam.ts";
import { writeJsonAtomic } from "../train/tune/fs_atomic.ts";

/** One measured throughput. */
export interface Throughput {
  /** Images per second: median over the timed windows. */
  imagesPerSecond: number;
  /** Each window's images per second. */
  windows: number[];
  /** Process CPU milliseconds per step (all threads; robust to other processes). */
  cpuMsPerStep: number;
}

interface TimingOptions {
  warmup: number;
  windows: number;
  targetMs: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Times `step` (which encodes one batch of `batch` images): warm-up, then windows of steps. */
async function timeSteps(
  step: () => void,
  batch: number,
  options: TimingOptions,
): Promise<Throughput> {
  for (let i = 0; i < options.warmup; i++) step();
  await sync();
  const t0 = performance.now();
  step();
  await sync();
  const stepsPerWindow = Math.max(
    2,
    Math.min(500, Math.round(options.targetMs / (performance.now() - t0))),
  );
  const windows: number[] = [];
  let cpu = 0;
  for (let w = 0; w < options.windows; w++) {
    const c0 = process.cpuUsage();
    const start = performance.now();
    for (let i = 0; i < stepsPerWindow; i++) step();
    await sync();
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(c0);
    cpu += (used.user + used.system) / 1000 / stepsPerWindow;
    windows.push(batch * stepsPerWindow / seconds);
  }
  return { imagesPerSecond: median(windows), windows, cpuMsPerStep: cpu / options.windows };
}

/** Training throughput of wgtorch on one of the study's models (Adam 0.01, random data on the GPU). */
export async function trainThroughput(
  name: ModelName,
  options: { batchSize: number } & Partial<TimingOptions>,
): Promise<Throughput & { liveBytesGrowth: number }> {
  const model = createModel(name);
  const optimizer = new Adam(model.parameters(), { lr: 0.01 });
  const x = randUniform([options.batchSize, 1, 28, 28], { seed: 1 });
  const y = tensor(Int32Array.from({ length: options.batchSize }, (_, i) => i % 10), [
    options.batchSize,
  ], {
    dtype: "i32",
  });
  const step = () =>
    tidy(() => {
      optimizer.zeroGrad();
      nllLoss(model.forward(x), y).backward();
      optimizer.step();
    });
  const timing = { warmup: 3, windows: 5, targetMs: 1500, ...options };
  for (let i = 0; i < timing.warmup; i++) step();
  await sync();
  const before = memoryStats().liveBytes;
  const result = await timeSteps(step, options.batchSize, timing);
  const growth = memoryStats().liveBytes - before;
  optimizer.zeroGrad();
  optimizer.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
  return { ...result, liveBytesGrowth: growth };
}

/** Evaluation (forward only, eval mode) throughput of wgtorch on one of the study's models. */
export async function evalThroughput(
  name: ModelName,
  options: { batchSize: number } & Partial<TimingOptions>,
): Promise<Throughput> {
  const model = createModel(name).eval();
  const x = randUniform([options.batchSize, 1, 28, 28], { seed: 1 });
  const step = () => tidy(() => void noGrad(() => model.forward(x)));
  const result = await timeSteps(step, options.batchSize, {
    warmup: 2,
    windows: 5,
    targetMs: 1000,
    ...options,
  });
  model.dispose();
  x.dispose();
  return result;
}

/** A kernel shape of the study's models (forward). */
export interface KernelCase {
  /** Short description. */
  name: string;
  /** "matmul" (x · Wᵀ as in Linear) or "conv2d" (valid, stride 1). */
  kind: "matmul" | "conv2d";
  /** For matmul: [m, k, n]; for conv2d: [batch, inChannels, size, outChannels, kernel]. */
  dims: number[];
}

/** The matmul and conv2d shapes of the study's models at batch 128. */
export const KERNEL_CASES: readonly KernelCase[] = [
  { name: "matmul 128x784 · 784x256", kind: "matmul", dims: [128, 784, 256] },
  { name: "matmul 128x256 · 256x128", kind: "matmul", dims: [128, 256, 128] },
  { name: "matmul 128x128 · 128x10", kind: "matmul", dims: [128, 128, 10] },
  { name: "matmul 128x320 · 320x10", kind: "matmul", dims: [128, 320, 10] },
  { name: "conv2d [128,1,28,28] * [10,1,5,5]", kind: "conv2d", dims: [128, 1, 28, 10, 5] },
  { name: "conv2d [128,10,12,12] * [20,10,5,5]", kind: "conv2d", dims: [128, 10, 12, 20, 5] },
];

function kernelFlops(c: KernelCase): number {
  if (c.kind === "matmul") return 2 * c.dims[0] * c.dims[1] * c.dims[2];
  const [batch, inC, size, outC, k] = c.dims;
  const out = size - k + 1;
  return 2 * batch * outC * out * out * inC * k * k;
}

/** GFLOP/s of wgtorch on one kernel shape (forward, the GPU work awaited). */
export async function kernelGflops(c: KernelCase): Promise<number> {
  let inputs: Tensor[];
  let run: () => void;
  if (c.kind === "matmul") {
    const [m, k, n] = c.dims;
    inputs = [randUniform([m, k], { seed: 1 }), randUniform([n, k], { seed: 2 })];
    run = () => tidy(() => void matmul(inputs[0], inputs[1], { transposeB: true }));
  } else {
    const [batch, inC, size, outC, k] = c.dims;
    inputs = [
      randUniform([batch, inC, size, size], { seed: 1 }),
      randUniform([outC, inC, k, k], { seed: 2 }),
    ];
    run = () => tidy(() => void conv2d(inputs[0], inputs[1]));
  }
  const result = await timeSteps(run, 1, { warmup: 2, windows: 5, targetMs: 400 });
  for (const t of inputs) t.dispose();
  return kernelFlops(c) * result.imagesPerSecond / 1e9;
}

/** One row of the report. */
export interface BenchRow {
  /** What was measured. */
  what: string;
  /** wgtorch's figure. */
  wgtorch: number;
  /** TF.js's figure, when measured. */
  tfjs?: number;
  /** wgtorch / TF.js. */
  ratio?: number;
  /** The unit of both figures. */
  unit: string;
  /** wgtorch's process CPU milliseconds per step, for throughput rows. */
  cpuMsPerStep?: number;
}

function fmt(value: number | undefined, digits = 0): string {
  if (value === undefined) return "—";
  return value.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: "string" },
      "no-tfjs": { type: "boolean", default: false },
      models: { type: "string", default: "mlp,cnn,cnn-bn" },
      batches: { type: "string", default: "32,128" },
      windows: { type: "string", default: "5" },
      profile: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno task bench [--json FILE] [--no-tfjs] [--models mlp,cnn,cnn-bn] [--batches 32,128] " +
        "[--windows 5] [--profile]",
    );
    return;
  }
  const gpu = await init();
  const models = values.models.split(",") as ("mlp" | "cnn" | "cnn-bn")[];
  const batches = values.batches.split(",").map(Number);
  const windows = Number(values.windows);
  console.error(`adapter: ${describeAdapter(gpu.adapter)}`);
  const tfjs = values["no-tfjs"] ? null : await import("./tfjs.ts");
  const tfjsSetup = tfjs ? await tfjs.setupTfjs() : null;
  if (tfjsSetup) console.error(`TF.js ${tfjsSetup.version}, backend ${tfjsSetup.backend}`);
  const rows: BenchRow[] = [];
  const add = (row: BenchRow) => {
    if (row.tfjs !== undefined) row.ratio = row.wgtorch / row.tfjs;
    rows.push(row);
    console.error(
      `${row.what}: wgtorch ${fmt(row.wgtorch, row.unit === "GFLOP/s" ? 2 : 0)} ${row.unit}` +
        (row.tfjs !== undefined
          ? `, TF.js ${fmt(row.tfjs, row.unit === "GFLOP/s" ? 2 : 0)} (x${fmt(row.ratio, 1)})`
          : ""),
    );
  };
  for (const model of models) {
    for (const batchSize of batches) {
      const ours = await trainThroughput(model, { batchSize, windows });
      if (ours.liveBytesGrowth !== 0) {
        console.error(`  live GPU bytes grew by ${ours.liveBytesGrowth} during ${model} training`);
      }
      const theirs = tfjs
        ? await tfjs.tfjsTrainThroughput(model, { batchSize, windows: 3 })
        : undefined;
      add({
        what: `train ${model} batch ${batchSize}`,
        wgtorch: ours.imagesPerSecond,
        tfjs: theirs?.imagesPerSecond,
        unit: "img/s",
        cpuMsPerStep: ours.cpuMsPerStep,
      });
    }
  }
  for (const model of models) {
    const ours = await evalThroughput(model, { batchSize: 128, windows });
    const theirs = tfjs
      ? await tfjs.tfjsEvalThroughput(model, { batchSize: 128, windows: 3 })
      : undefined;
    add({
      what: `eval ${model} batch 128`,
      wgtorch: ours.imagesPerSecond,
      tfjs: theirs?.imagesPerSecond,
      unit: "img/s",
    });
  }
  for (const c of KERNEL_CASES) {
    const ours = await kernelGflops(c);
    let theirs: number | undefined;
    if (tfjs) {
      theirs = c.kind === "matmul"
        ? await tfjs.tfjsKernelGflops("matmul", { m: c.dims[0], k: c.dims[1], n: c.dims[2] })
        : await tfjs.tfjsKernelGflops("conv2d", {
          batch: c.dims[0],
          inChannels: c.dims[1],
          height: c.dims[2],
          width: c.dims[2],
          outChannels: c.dims[3],
          kernel: c.dims[4],
        });
    }
    add({ what: c.name, wgtorch: ours, tfjs: theirs, unit: "GFLOP/s" });
  }
  const header =
    "| measurement | wgtorch | TF.js webgpu | ratio | unit |\n|---|---:|---:|---:|---|";
  const lines = rows.map((r) => {
    const digits = r.unit === "GFLOP/s" ? 2 : 0;
    return `| ${r.what} | ${fmt(r.wgtorch, digits)} | ${fmt(r.tfjs, digits)} | ${
      r.ratio ? `${fmt(r.ratio, 1)}x` : "—"
    } | ${r.unit} |`;
  });
  console.log(`Adapter: ${describeAdapter(gpu.adapter)}\n\n${header}\n${lines.join("\n")}`);
  if (values.profile) {
    for (const model of models) {
      const m = createModel(model);
      const optimizer = new Adam(m.parameters(), { lr: 0.01 });
      const x = randUniform([128, 1, 28, 28]);
      const y = tensor(Int32Array.from({ length: 128 }, (_, i) => i % 10), [128], { dtype: "i32" });
      const step = () =>
        tidy(() => {
          optimizer.zeroGrad();
          nllLoss(m.forward(x), y).backward();
          optimizer.step();
        });
      for (let i = 0; i < 3; i++) step();
      await sync();
      if (!startProfiling()) break;
      for (let i = 0; i < 5; i++) step();
      const times = await stopProfiling();
      console.log(`\nKernel time per ${model} training step, batch 128 (GPU timestamps):`);
      for (const t of times) {
        console.log(`${(t.milliseconds / 5).toFixed(2).padStart(8)} ms  ${t.name}`);
      }
      optimizer.dispose();
      m.dispose();
    }
  }
  if (values.json) {
    const report = {
      date: new Date().toISOString(),
      adapter: gpu.adapter,
      tfjs: tfjsSetup,
      deno: Deno.version.deno,
      rows,
    };
    await writeJsonAtomic(values.json, report);
    console.error(`wrote ${values.json}`);
  }
}

if (import.meta.main) await main();
