/**
 * `deno task bench`: training and evaluation throughput of the study's models, and GFLOP/s of
 * their matmul and conv2d shapes, for wgtorch and for TensorFlow.js (WebGPU backend) in the same
 * process on the same adapter, side by side with the ratio.
 *
 * The same training and evaluation rows then run in PyTorch on the CPU (`bench/pytorch_bench.py`,
 * a subprocess, right after wgtorch's), by default whenever `python3 -c "import torch"` works.
 *
 * Usage: `deno task bench [--json FILE] [--no-tfjs] [--pytorch | --no-pytorch]
 * [--models mlp,cnn,cnn-bn] [--batches 32,128] [--windows N] [--profile]`
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
  streamStats,
  sync,
  type Tensor,
  tensor,
  tidy,
} from "../mod.ts";
import { Adam } from "../train/optim/adam.ts";
import { writeJsonAtomic } from "../train/tune/fs_atomic.ts";
import { findTorchPython, type PytorchReport, pytorchThroughput } from "./pytorch.ts";

/** One measured throughput. */
export interface Throughput {
  /** Images per second: median over the timed windows. */
  imagesPerSecond: number;
  /** Each window's images per second. */
  windows: number[];
  /** Process CPU milliseconds per step (all threads; robust to other processes). */
  cpuMsPerStep: number;
  /** Compute dispatches encoded per step. */
  dispatchesPerStep: number;
  /** Milliseconds per step spent in JavaScript encoding the step (GPU work not awaited). */
  hostMsPerStep: number;
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
  let host = 0;
  const dispatches0 = streamStats().dispatches;
  for (let w = 0; w < options.windows; w++) {
    const c0 = process.cpuUsage();
    const start = performance.now();
    for (let i = 0; i < stepsPerWindow; i++) step();
    host += performance.now() - start;
    await sync();
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(c0);
    cpu += (used.user + used.system) / 1000 / stepsPerWindow;
    windows.push(batch * stepsPerWindow / seconds);
  }
  const steps = options.windows * stepsPerWindow;
  return {
    imagesPerSecond: median(windows),
    windows,
    cpuMsPerStep: cpu / options.windows,
    dispatchesPerStep: (streamStats().dispatches - dispatches0) / steps,
    hostMsPerStep: host / steps,
  };
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
  /** PyTorch CPU's figure, when measured. */
  pytorch?: number;
  /** wgtorch / PyTorch CPU. */
  ratioPytorch?: number;
  /** The unit of both figures. */
  unit: string;
  /** wgtorch's process CPU milliseconds per step, for throughput rows. */
  cpuMsPerStep?: number;
  /** wgtorch's compute dispatches per step, for throughput rows. */
  dispatchesPerStep?: number;
  /** wgtorch's JavaScript (encoding) milliseconds per step, for throughput rows. */
  hostMsPerStep?: number;
}

function fmt(value: number | undefined, digits = 0): string {
  if (value === undefined) return "—";
  return value.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

/** The rows as a Markdown table: wgtorch, TF.js webgpu and PyTorch CPU with both ratios. */
export function benchTable(rows: readonly BenchRow[]): string {
  const cell = (value: number | undefined, digits: number) =>
    value === undefined ? "—" : fmt(value, digits);
  const ratio = (value: number | undefined) => value === undefined ? "—" : `${fmt(value, 2)}x`;
  const lines = rows.map((r) => {
    const digits = r.unit === "GFLOP/s" ? 2 : 0;
    return `| ${r.what} | ${r.unit} | ${cell(r.wgtorch, digits)} | ${cell(r.tfjs, digits)} | ${
      cell(r.pytorch, digits)
    } | ${ratio(r.ratio)} | ${ratio(r.ratioPytorch)} | ${cell(r.dispatchesPerStep, 0)} |`;
  });
  return [
    "| measurement | unit | wgtorch | TF.js webgpu | PyTorch CPU | wgtorch / TF.js | " +
    "wgtorch / PyTorch | dispatches per step |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
    ...lines,
  ].join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: "string" },
      "no-tfjs": { type: "boolean", default: false },
      pytorch: { type: "boolean", default: false },
      "no-pytorch": { type: "boolean", default: false },
      models: { type: "string", default: "mlp,cnn,cnn-bn" },
      batches: { type: "string", default: "32,128" },
      windows: { type: "string", default: "5" },
      profile: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno task bench [--json FILE] [--no-tfjs] [--pytorch | --no-pytorch] " +
        "[--models mlp,cnn,cnn-bn] [--batches 32,128] [--windows 5] [--profile]\n" +
        "PyTorch CPU rows run by default when python3 can import torch; --pytorch makes that " +
        "required.",
    );
    return;
  }
  const python = values["no-pytorch"] ? null : await findTorchPython();
  if (values.pytorch && !python) {
    console.error(
      "bench: --pytorch needs a python3 that can import torch (Debian: apt-get install " +
        "python3-torch libopenblas0-pthread)",
    );
    Deno.exit(2);
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
        dispatchesPerStep: ours.dispatchesPerStep,
        hostMsPerStep: ours.hostMsPerStep,
      });
      console.error(
        `  ${fmt(ours.dispatchesPerStep, 0)} dispatches, ${fmt(ours.hostMsPerStep, 2)} ms of ` +
          `JavaScript, ${fmt(ours.cpuMsPerStep, 1)} ms of process CPU per step`,
      );
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
  let pytorch: PytorchReport | null = null;
  if (python) {
    console.error(`PyTorch CPU (${python}), ${navigator.hardwareConcurrency} threads ...`);
    pytorch = await pytorchThroughput(python, {
      models,
      batches,
      windows,
      threads: navigator.hardwareConcurrency,
    });
    console.error(
      `PyTorch ${pytorch.torch}, ${pytorch.threads} threads, BLAS ${
        pytorch.blas.join(", ") || "unknown"
      }` + (pytorch.openblasCoretype ? `, OPENBLAS_CORETYPE=${pytorch.openblasCoretype}` : ""),
    );
    for (const theirs of pytorch.rows) {
      const row = rows.find((r) => r.what === theirs.what);
      if (!row) continue;
      row.pytorch = theirs.imagesPerSecond;
      row.ratioPytorch = row.wgtorch / theirs.imagesPerSecond;
    }
  }
  console.log(`Adapter: ${describeAdapter(gpu.adapter)}`);
  if (pytorch) {
    console.log(
      `PyTorch ${pytorch.torch} on the CPU, ${pytorch.threads} threads, BLAS: ${
        pytorch.blas.map((path) => path.split("/").pop()).join(", ") || "unknown"
      }`,
    );
  }
  console.log(`\n${benchTable(rows)}`);
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
      const dispatches0 = streamStats().dispatches;
      const start = performance.now();
      for (let i = 0; i < 5; i++) step();
      const hostMs = (performance.now() - start) / 5;
      const dispatches = (streamStats().dispatches - dispatches0) / 5;
      const times = await stopProfiling();
      console.log(`\nKernel time per ${model} training step, batch 128 (GPU timestamps):`);
      for (const t of times) {
        console.log(`${(t.milliseconds / 5).toFixed(2).padStart(8)} ms  ${t.name}`);
      }
      const total = times.reduce((sum, t) => sum + t.milliseconds, 0) / 5;
      console.log(
        `${total.toFixed(2).padStart(8)} ms  in kernels; ${dispatches} dispatches and ` +
          `${hostMs.toFixed(2)} ms of JavaScript (encoding, with profiling on) per step`,
      );
      optimizer.dispose();
      m.dispose();
    }
  }
  if (values.json) {
    const report = {
      date: new Date().toISOString(),
      adapter: gpu.adapter,
      tfjs: tfjsSetup,
      pytorch: pytorch && { ...pytorch, rows: undefined },
      deno: Deno.version.deno,
      rows,
    };
    await writeJsonAtomic(values.json, report);
    console.error(`wrote ${values.json}`);
  }
}

if (import.meta.main) await main();
