/**
 * Matrix multiply C = op(A) · op(B) with either operand transposed in place (no transpose pass),
 * an optional fused epilogue (bias, relu, dropout's mask), and `linear(x, weight, bias)` built on it.
 *
 * The kernel is register-blocked for llvmpipe (see docs/DESIGN.md): one output dimension is
 * "uniform" — each workgroup owns `tileU` indices of it, so every lane loads those values at
 * the same address (a scalar load and a broadcast) — and the other is spread over the lanes,
 * each lane owning `tileL` indices of it. Every lane accumulates a tileU × tileL block of C in
 * registers, stepping K four at a time with vec4 loads where the layout allows.
 *
 * `matmul` follows `torch.matmul`: 1-D operands gain a dimension that the result drops again, and
 * operands of rank > 2 are stacks of matrices whose batch dimensions broadcast. A stack times one
 * matrix ([B, M, K] @ [K, N]) folds into one 2-D matmul ([B·M, K] @ [K, N], views, no copy);
 * other stacks run the same kernel once for the whole batch, the batch index on the grid's z
 * (`layers`) and each operand's batch strides baked in (0 along broadcast dimensions).
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { gpu } from "../gpu/device.ts";
import { u32 } from "../gpu/kernel.ts";
import { type KernelPolicy, kernelPolicy } from "../gpu/policy.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";
import { alignedStrides, sumTo } from "./broadcast.ts";
import { MASK_KEY_WGSL, maskPrelude } from "./dropout.ts";
import { keepNan, relu1 } from "./nan_wgsl.ts";

/** How a matmul is laid out on the GPU. */
interface MatmulPlan {
  /** Workgroups along (lane dimension, uniform dimension). */
  groups: [number, number];
  /** Which output dimension is spread over the lanes (the other is uniform per workgroup). */
  lanesOn: "m" | "n";
  /** Indices of the uniform dimension per workgroup. */
  tileU: number;
  /** Indices of the lane dimension per lane. */
  tileL: number;
  /** Invocations per workgroup. */
  workgroupSize: number;
  /** Workgroups along z: the batch (a 2-D matmul has none). */
  layers?: number;
  /** Workgroups along y per uniform tile row of one matrix (`groups[1]` is this times `batchesPerRow`). */
  uniformGroups: number;
  /**
   * Matrices of the batch per z layer: 1, unless the batch exceeds the z limit
   * (maxComputeWorkgroupsPerDimension); then y holds `batchesPerRow` matrices' tiles.
   */
  batchesPerRow: number;
}

/**
 * The batch of a batched matmul: the output's batch dimensions (adjacent ones merged where both
 * operands allow) and each operand's stride along them, in elements (0 where it broadcasts).
 */
interface MatmulBatch {
  /** Sizes of the (merged) batch dimensions of C, outermost first. */
  dims: readonly number[];
  /** A's stride along each of `dims`, in elements. */
  aStrides: readonly number[];
  /** B's stride along each of `dims`, in elements. */
  bStrides: readonly number[];
}

/** Shape and options of one matmul kernel. */
interface MatmulShape {
  /** Rows of C. */
  m: number;
  /** Columns of C. */
  n: number;
  /** The reduced dimension. */
  k: number;
  /** A is stored [K, M] (C = Aᵀ · ...). */
  transposeA: boolean;
  /** B is stored [N, K] (C = ... · Bᵀ). */
  transposeB: boolean;
  /** Adds a bias vector of length N to every row. */
  bias: boolean;
  /** Applies relu (NaN kept) after the bias. */
  relu: boolean;
  /**
   * Then dropout with this probability in (0, 1), the mask of `dropout` for C's element indices
   * and the seed `params.seed` (kernel `MATMUL_DROPOUT`; no batch).
   */
  dropout?: number;
  /**
   * Also writes each row's sum over K of op(A) into `sums` [M], in K order (as `sumRows` adds):
   * a linear layer's bias gradient beside its weight gradient. Needs no batch.
   */
  rowSums?: boolean;
  /**
   * Also writes log_softmax of each row of C into `logProbs` [M, N], as `logSoftmax`'s row kernel
   * computes it from the stored row (the same values). Needs each lane to hold whole rows
   * (`logSoftmaxEpilogueApplies`).
   */
  logSoftmax?: boolean;
  /** A stack of matmuls, one per batch index (C's matrices contiguous, M·N apart). */
  batch?: MatmulBatch;
}

/** One operand as the kernel sees it: its own dimension `d` and the shared K. */
interface Operand {
  /** WGSL name of the binding. */
  name: string;
  /** Size of the operand's own dimension. */
  dim: number;
  /** True when consecutive k are adjacent in memory (element (d, k) at d*K + k). */
  contiguousK: boolean;
  /** WGSL prefix adding the batch offset to an index (`aBase + `), empty for a 2-D matmul. */
  offset: string;
}

/** The register blocks and grid of a matmul with its lanes on `lanesOn`. */
function gridFor(shape: MatmulShape, policy: KernelPolicy, lanesOn: "m" | "n") {
  const uniformDim = lanesOn === "n" ? shape.m : shape.n;
  const laneDim = lanesOn === "n" ? shape.n : shape.m;
  const workgroupSize = policy.narrowWorkgroup;
  // Register blocks of 16 x up to `matmulLaneTile` (llvmpipe: 16 x 16 ran the MLP's matmuls
  // 8-17% faster than 16 x 8, measured side by side; the sums are the same either way).
  const tileU = uniformDim <= 16 ? uniformDim : 16;
  const tiles = [16, 8, 4].filter((tile) => tile <= policy.matmulLaneTile);
  const tileL = tiles.find((tile) => laneDim >= workgroupSize * tile) ?? 4;
  const uniformGroups = Math.ceil(uniformDim / tileU);
  const groups: [number, number] = [Math.ceil(laneDim / (workgroupSize * tileL)), uniformGroups];
  // Outputs the grid computes, padding included.
  const computed = groups[0] * workgroupSize * tileL * uniformGroups * tileU;
  return { lanesOn, tileU, tileL, workgroupSize, groups, uniformGroups, computed };
}

/** The plan chosen for a shape under `policy`. */
function planMatmul(shape: MatmulShape, policy: KernelPolicy): MatmulPlan {
  let grid = gridFor(shape, policy, shape.n >= 32 || shape.n >= shape.m ? "n" : "m");
  // Lanes on M where lanes on N would compute much more padding: the MLP's weight gradient
  // [256, 784] pads 784 columns to 896 (12.5%) and 256 rows not at all; it ran 8-9% faster.
  // Each output's sum is the same either way.
  const other = gridFor(shape, policy, "m");
  if (grid.lanesOn === "n" && other.computed < 0.95 * grid.computed) grid = other;
  const { lanesOn, tileU, tileL, workgroupSize, groups, uniformGroups } = grid;
  if (!shape.batch) {
    return { lanesOn, tileU, tileL, workgroupSize, groups, uniformGroups, batchesPerRow: 1 };
  }
  // One z layer per matrix; past the z limit, several matrices share a layer, side by side in y.
  const total = sizeOf(shape.batch.dims);
  const limit = gpu().limits.maxComputeWorkgroupsPerDimension;
  const batchesPerRow = Math.ceil(total / limit);
  groups[1] = uniformGroups * batchesPerRow;
  const layers = Math.ceil(total / batchesPerRow);
  return { lanesOn, tileU, tileL, workgroupSize, groups, layers, uniformGroups, batchesPerRow };
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function operands(shape: MatmulShape, plan: MatmulPlan): { u: Operand; l: Operand } {
  const batched = shape.batch !== undefined;
  const a: Operand = {
    name: "a",
    dim: shape.m,
    contiguousK: !shape.transposeA,
    offset: batched ? "aBase + " : "",
  };
  const b: Operand = {
    name: "b",
    dim: shape.n,
    contiguousK: shape.transposeB,
    offset: batched ? "bBase + " : "",
  };
  return plan.lanesOn === "n" ? { u: a, l: b } : { u: b, l: a };
}

/**
 * WGSL that loads the 4 values (d, k0..k0+3) of `op` into `vec4 <target>` for each d in `ds`
 * (WGSL expressions of already-clamped indices). With `vec4` set, loads 4-wide along K or D.
 */
function loadBlock(op: Operand, k: number, target: string, ds: string[], vec4: boolean): string {
  const K = u32(k);
  if (op.contiguousK) {
    if (vec4) {
      return ds.map((d, i) =>
        `let ${target}${i} = ${op.name}Vec4((${op.offset}${d} * ${K} + k0) / 4u);`
      ).join(
        "\n",
      );
    }
    return ds.map((d, i) => {
      const base = `${op.offset}${d} * ${K} + k0`;
      return `let ${target}${i} = vec4<f32>(${op.name}At(${base}), ${op.name}At(${base} + 1u), ` +
        `${op.name}At(${base} + 2u), ${op.name}At(${base} + 3u));`;
    }).join("\n");
  }
  const D = u32(op.dim);
  if (vec4) {
    // ds come in groups of 4 consecutive indices starting at a multiple of 4: load along D and
    // transpose the 4x4 block in registers.
    const lines: string[] = [];
    for (let g = 0; g < ds.length; g += 4) {
      for (let j = 0; j < 4; j++) {
        lines.push(
          `let ${target}_t${g}_${j} = ${op.name}Vec4((${op.offset}(k0 + ${j}u) * ${D} + ${
            ds[g]
          }) / 4u);`,
        );
      }
      for (let i = 0; i < 4 && g + i < ds.length; i++) {
        const c = "xyzw"[i];
        lines.push(
          `let ${target}${g + i} = vec4<f32>(${target}_t${g}_0.${c}, ${target}_t${g}_1.${c}, ` +
            `${target}_t${g}_2.${c}, ${target}_t${g}_3.${c});`,
        );
      }
    }
    return lines.join("\n");
  }
  return ds.map((d, i) =>
    `let ${target}${i} = vec4<f32>(${op.name}At(${op.offset}k0 * ${D} + ${d}), ` +
    `${op.name}At(${op.offset}(k0 + 1u) * ${D} + ${d}), ` +
    `${op.name}At(${op.offset}(k0 + 2u) * ${D} + ${d}), ` +
    `${op.name}At(${op.offset}(k0 + 3u) * ${D} + ${d}));`
  ).join("\n");
}

/** Whether `op` can be read as vec4 for a tile of `tile` indices starting at multiples of it. */
function canVec4(op: Operand, k: number, tile: number): boolean {
  return op.contiguousK ? k % 4 === 0 : op.dim % 4 === 0 && tile % 4 === 0;
}

function scalarAt(op: Operand, k: number, d: string, kk: string): string {
  return op.contiguousK
    ? `${op.name}At(${op.offset}${d} * ${u32(k)} + ${kk})`
    : `${op.name}At(${op.offset}${kk} * ${u32(op.dim)} + ${d})`;
}

/**
 * WGSL finding the batch index `bi` of this workgroup and the offsets `aBase`, `bBase`, `cBase` of
 * its matrices (returns early past the end when several matrices share a z layer).
 */
function batchPrologue(shape: MatmulShape, batch: MatmulBatch, plan: MatmulPlan): string {
  const total = sizeOf(batch.dims);
  const lines = plan.batchesPerRow === 1 ? ["let bi = wid.z;"] : [
    `let bi = wid.z * ${u32(plan.batchesPerRow)} + wid.y / ${u32(plan.uniformGroups)};`,
    `if (bi >= ${u32(total)}) { return; }`,
  ];
  lines.push("var aBase = 0u;", "var bBase = 0u;");
  if (batch.dims.length > 0) lines.push("var rest = bi;");
  for (let d = batch.dims.length - 1; d >= 0; d--) {
    const size = u32(batch.dims[d]);
    const terms = [
      batch.aStrides[d] ? ` aBase += i * ${u32(batch.aStrides[d])};` : "",
      batch.bStrides[d] ? ` bBase += i * ${u32(batch.bStrides[d])};` : "",
    ].join("");
    lines.push(
      d === 0
        ? `{ let i = rest;${terms} }`
        : `{ let i = rest % ${size}; rest = rest / ${size};${terms} }`,
    );
  }
  lines.push(`let cBase = bi * ${u32(shape.m * shape.n)};`);
  return "\n  " + lines.join("\n  ");
}

/** The body of one matmul kernel's `main`. */
function matmulBody(shape: MatmulShape, plan: MatmulPlan): string {
  const { u, l } = operands(shape, plan);
  const { tileU, tileL, workgroupSize } = plan;
  const kMain = shape.k - (shape.k % 4);
  const uVec4 = canVec4(u, shape.k, tileU);
  const lVec4 = canVec4(l, shape.k, tileL);
  // Clamped indices keep every load in bounds; rows past the end are computed and not stored.
  const uClampLast = uVec4 && !u.contiguousK ? u.dim - 4 : u.dim - 1;
  const lClampLast = lVec4 && !l.contiguousK ? l.dim - 4 : l.dim - 1;
  const uIdx = Array.from({ length: tileU }, (_, i) => `ui${i}`);
  const lIdx = Array.from({ length: tileL }, (_, i) => `li${i}`);
  const declare = (idx: string[], base: string, last: number, groupOf4: boolean) =>
    idx.map((v, i) => {
      if (groupOf4) {
        const head = `min(${base} + ${u32(i - (i % 4))}, ${u32(Math.max(last, 0))})`;
        return `let ${v} = ${head} + ${u32(i % 4)};`;
      }
      return `let ${v} = min(${base} + ${u32(i)}, ${u32(last)});`;
    }).join("\n");
  const acc = (i: number, j: number) => `c${i}_${j}`;
  const accumulators = uIdx.flatMap((_, i) => lIdx.map((_, j) => `var ${acc(i, j)} = 0.0;`)).join(
    "\n",
  );
  const fmas = uIdx.flatMap((_, i) => lIdx.map((_, j) => `${acc(i, j)} += dot(uv${i}, lv${j});`))
    .join("\n");
  // Row sums of op(A) (the uniform operand with lanes on N, else the lanes' own): each lane adds
  // every value of op(A) it loads one by one in K order; one lane (or the first row of
  // workgroups) stores them.
  const onLanes = plan.lanesOn === "m";
  const [sumLoad, sumTail, sumRow] = onLanes ? ["lv", "lt", "lRow"] : ["uv", "ut", "uRow"];
  const sums = shape.rowSums ? (onLanes ? lIdx : uIdx).map((_, i) => `s${i}`) : [];
  const addRows = (component: (i: number) => string) =>
    sums.map((sum, i) => `${sum} = ${sum} + ${component(i)};`).join("\n");
  const tail = Array.from({ length: shape.k - kMain }, (_, t) => {
    const kk = u32(kMain + t);
    const lines = [
      ...uIdx.map((d, i) => `let ut${i}_${t} = ${scalarAt(u, shape.k, d, kk)};`),
      ...lIdx.map((d, j) => `let lt${j}_${t} = ${scalarAt(l, shape.k, d, kk)};`),
      ...uIdx.flatMap((_, i) => lIdx.map((_, j) => `${acc(i, j)} += ut${i}_${t} * lt${j}_${t};`)),
      addRows((i) => `${sumTail}${i}_${t}`),
    ];
    return lines.join("\n");
  }).join("\n");
  const stores = uIdx.flatMap((_, i) =>
    lIdx.map((_, j) => {
      const [row, col] = plan.lanesOn === "n" ? [`uRow${i}`, `lRow${j}`] : [`lRow${j}`, `uRow${i}`];
      const inRange = plan.lanesOn === "n"
        ? `uRow${i} < ${u32(shape.m)} && lRow${j} < ${u32(shape.n)}`
        : `lRow${j} < ${u32(shape.m)} && uRow${i} < ${u32(shape.n)}`;
      let value = acc(i, j);
      if (shape.bias) value = `${value} + bias[${col}]`;
      const at = `${shape.batch ? "cBase + " : ""}${row} * ${u32(shape.n)} + ${col}`;
      if (!shape.relu && shape.dropout === undefined) {
        return `if (${inRange}) { c[${at}] = ${value}; }`;
      }
      const lines = [`var v = ${value};`];
      if (shape.relu) lines.push(`v = ${relu1("v")};`);
      if (shape.dropout !== undefined) {
        // As dropout's kernel: a multiply, so that a dropped NaN stays NaN.
        lines.push(
          `let i = ${at};`,
          "v = v * select(0.0, SCALE, kept1(i, key));",
        );
      }
      return `if (${inRange}) { ${lines.join(" ")} c[${at}] = v; }`;
    })
  ).join("\n");
  return /* wgsl */ `
  // C[${shape.m}x${shape.n}] = ${shape.transposeA ? "Aᵀ" : "A"} · ${
    shape.transposeB ? "Bᵀ" : "B"
  }, K = ${shape.k}${shape.batch ? batchPrologue(shape, shape.batch, plan) : ""}
  let uBase = ${
    shape.batch && plan.batchesPerRow > 1 ? `(wid.y % ${u32(plan.uniformGroups)})` : "wid.y"
  } * ${u32(tileU)};
  let lBase = (wid.x * ${u32(workgroupSize)} + lid) * ${u32(tileL)};
  ${declare(uIdx, "uBase", uClampLast, uVec4 && !u.contiguousK)}
  ${declare(lIdx, "lBase", lClampLast, lVec4 && !l.contiguousK)}
  ${accumulators}
  ${sums.map((sum) => `var ${sum} = 0.0;`).join("\n")}
  for (var k0 = 0u; k0 < ${u32(kMain)}; k0 += 4u) {
    ${loadBlock(u, shape.k, "uv", uIdx, uVec4)}
    ${loadBlock(l, shape.k, "lv", lIdx, lVec4)}
    ${fmas}
    ${["x", "y", "z", "w"].map((c) => addRows((i) => `${sumLoad}${i}.${c}`)).join("\n")}
  }
  ${tail}
  ${shape.dropout === undefined ? "" : `let key = ${MASK_KEY_WGSL};`}
  ${uIdx.map((_, i) => `let uRow${i} = uBase + ${u32(i)};`).join("\n")}
  ${lIdx.map((_, j) => `let lRow${j} = lBase + ${u32(j)};`).join("\n")}
  ${stores}${shape.logSoftmax ? logSoftmaxStores(shape, uIdx, lIdx) : ""}${
    sums.length === 0 ? "" : `
  if (${onLanes ? "wid.y" : "lBase"} == 0u) {
    ${
      sums.map((sum, i) => `if (${sumRow}${i} < ${u32(shape.m)}) { sums[${sumRow}${i}] = ${sum}; }`)
        .join("\n    ")
    }
  }`
  }`;
}

/**
 * log_softmax of the rows a lane holds (lanes on M, one column block: `logSoftmaxEpilogueApplies`),
 * from the values it stored in C, in the order of `logSoftmax`'s row kernel: the row's max, the
 * sum of exp(value - max), and value - (max + log(sum)); NaN kept.
 */
function logSoftmaxStores(shape: MatmulShape, uIdx: string[], lIdx: string[]): string {
  return lIdx.map((_, j) => {
    const values = uIdx.map((_, i) => `c${i}_${j}${shape.bias ? ` + bias[uRow${i}]` : ""}`);
    return /* wgsl */ `
  if (lRow${j} < ${u32(shape.m)}) {
    ${values.map((v, i) => `let v${i} = ${v};`).join(" ")}
    var biggest = v0;
    ${values.slice(1).map((_, i) => `biggest = max(biggest, v${i + 1});`).join(" ")}
    var total = 0.0;
    ${
      values.map((_, i) => `{ let d = v${i} - biggest; total += ${keepNan("exp", "d")}; }`).join(
        " ",
      )
    }
    let logSum = biggest + ${keepNan("log", "total")};
    ${
      values.map((_, i) => `logProbs[lRow${j} * ${u32(shape.n)} + uRow${i}] = v${i} - logSum;`)
        .join(" ")
    }
  }`;
  }).join("");
}

/** The matmul kernel: A and B read as inputs, C written, an optional bias read. */
const MATMUL: KernelSpec<MatmulShape, MatmulPlan> = {
  name: "matmul",
  key: (s) =>
    `${s.transposeA ? "t" : "n"}${s.transposeB ? "t" : "n"}_${s.m}x${s.n}x${s.k}` +
    (s.bias ? "_bias" : "") + (s.relu ? "_relu" : "") + (s.rowSums ? "_rowsums" : "") +
    (s.logSoftmax ? "_log_softmax" : "") + (s.dropout === undefined ? "" : `_dropout${s.dropout}`) +
    (s.batch
      ? `_batch${s.batch.dims.join("x")}_a${s.batch.aStrides.join(".")}_b${
        s.batch.bStrides.join(".")
      }`
      : ""),
  bindings: (s) => [
    { name: "a", role: "input", uniform: true },
    { name: "b", role: "input", uniform: true },
    { name: "c", role: "write" },
    ...(s.bias ? [{ name: "bias", role: "read" } as const] : []),
    ...(s.rowSums ? [{ name: "sums", role: "write" } as const] : []),
    ...(s.logSoftmax ? [{ name: "logProbs", role: "write" } as const] : []),
  ],
  plan: (shape, policy) => {
    const plan = planMatmul(shape, policy);
    if (shape.rowSums && shape.batch) {
      throw new Error("matmul: row sums need a matmul without a batch");
    }
    if (shape.logSoftmax && !wholeRows(shape, plan)) {
      throw new Error("matmul: a log_softmax epilogue needs lanes holding whole rows");
    }
    return plan;
  },
  // A classifier's head: its loss (one workgroup too) may run in the same workgroup after it.
  chain: (shape) => !!shape.logSoftmax,
  body: (shape, { plan }) => matmulBody(shape, plan),
};

/** The matmul kernel with dropout's mask in its epilogue, the seed in its params. */
const MATMUL_DROPOUT: KernelSpec<MatmulShape, MatmulPlan> = {
  ...MATMUL,
  name: "matmul_dropout",
  params: "seed: u32",
  prelude: (shape) => maskPrelude(shape.dropout!),
  plan: (shape, policy) => {
    if (shape.batch || shape.dropout === undefined) {
      throw new Error("matmul_dropout: needs a dropout probability and no batch");
    }
    return MATMUL.plan(shape, policy);
  },
};

/**
 * Encodes C = op(A) · op(B) (+ bias, relu, dropout with `seed`; row sums into `sums`) into a new
 * [M, N] tensor.
 */
function matmulKernel(
  a: Tensor,
  b: Tensor,
  shape: MatmulShape,
  options: { bias?: Tensor; sums?: Tensor; seed?: number; logProbs?: Tensor } = {},
): Tensor {
  // An empty product has nothing to compute (and no kernel plan for a 0-sized dimension).
  if (shape.m === 0 || shape.n === 0) return Tensor.empty([shape.m, shape.n]);
  const out = Tensor.empty([shape.m, shape.n]);
  const resources = {
    a,
    b,
    c: out,
    ...(options.bias ? { bias: options.bias } : {}),
    ...(options.sums ? { sums: options.sums } : {}),
    ...(options.logProbs ? { logProbs: options.logProbs } : {}),
  };
  if (shape.dropout === undefined) runKernel(MATMUL, shape, resources);
  else runKernel(MATMUL_DROPOUT, shape, resources, { params: new Uint32Array([options.seed!]) });
  return out;
}

/** Whether each lane of `plan` holds whole rows of C: lanes on M, one block of all N columns. */
function wholeRows(shape: MatmulShape, plan: MatmulPlan): boolean {
  return plan.lanesOn === "m" && plan.tileU === shape.n && !shape.batch && !shape.relu &&
    shape.dropout === undefined;
}

/** Whether the matmul kernel can also sum op(A)'s rows for `shape` (see `rowSums`). */
function rowSumsApply(shape: MatmulShape): boolean {
  return shape.m > 0 && shape.n > 0 && shape.k > 0 && !shape.batch;
}

/**
 * The batch layout of C's batch dimensions `out` for operands with batch dimensions `a` and `b`
 * (matrices of `aMatrix` and `bMatrix` elements): size-1 dimensions dropped, and adjacent
 * dimensions merged where both operands step through them as through one.
 */
function batchLayout(
  out: readonly number[],
  a: readonly number[],
  b: readonly number[],
  aMatrix: number,
  bMatrix: number,
): MatmulBatch {
  const aAligned = alignedStrides(a, out), bAligned = alignedStrides(b, out);
  const dims: number[] = [], aStrides: number[] = [], bStrides: number[] = [];
  for (const [d, size] of out.entries()) {
    if (size === 1) continue;
    const sa = aAligned[d] * aMatrix, sb = bAligned[d] * bMatrix;
    const last = dims.length - 1;
    if (last >= 0 && aStrides[last] === sa * size && bStrides[last] === sb * size) {
      dims[last] *= size;
      aStrides[last] = sa;
      bStrides[last] = sb;
    } else {
      dims.push(size);
      aStrides.push(sa);
      bStrides.push(sb);
    }
  }
  return { dims, aStrides, bStrides };
}

/**
 * C = op(A) · op(B) for A [...batchA, *, *] and B [...batchB, *, *] (shapes already checked), a
 * new [...batch, M, N] tensor: the 2-D kernel for matrices, the batched one for stacks.
 */
function product(a: Tensor, b: Tensor, transposeA: boolean, transposeB: boolean): Tensor {
  const [m, k] = transposeA
    ? [a.shape.at(-1)!, a.shape.at(-2)!]
    : [a.shape.at(-2)!, a.shape.at(-1)!];
  const n = transposeB ? b.shape.at(-2)! : b.shape.at(-1)!;
  const flags = { transposeA, transposeB, bias: false, relu: false };
  if (a.rank === 2 && b.rank === 2) return matmulKernel(a, b, { m, n, k, ...flags });
  const aBatch = a.shape.slice(0, -2), bBatch = b.shape.slice(0, -2);
  const outBatch = broadcastBatch(aBatch, bBatch)!;
  const out = Tensor.empty([...outBatch, m, n]);
  if (out.size === 0) return out;
  const batch = batchLayout(outBatch, aBatch, bBatch, m * k, k * n);
  runKernel(MATMUL, { m, n, k, ...flags, batch }, { a, b, c: out });
  return out;
}

/** The batch shape `a` and `b` broadcast to (NumPy rules), or null when they do not. */
function broadcastBatch(a: readonly number[], b: readonly number[]): number[] | null {
  const out: number[] = [];
  for (let d = 1; d <= Math.max(a.length, b.length); d++) {
    const da = a[a.length - d] ?? 1, db = b[b.length - d] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return null;
    out.unshift(da === 1 ? db : da);
  }
  return out;
}

/** `t` with `shape`: itself when it has it already, else a view (released with `release`). */
function shaped(t: Tensor, shape: readonly number[]): Tensor {
  return sameShape(t.shape, shape) ? t : t.view(shape);
}

/** Disposes `view` when `shaped` made it (not the tensor it was made from). */
function release(view: Tensor, from: Tensor): void {
  if (view !== from) view.dispose();
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkFloat(op: string, ...tensors: Tensor[]): void {
  for (const t of tensors) {
    if (t.dtype !== "f32") {
      throw new Error(`${op}: needs f32 tensors, got ${t.dtype} ${formatShape(t.shape)}`);
    }
  }
}

/** Options of `matmul`. */
export interface MatmulOptions {
  /** Use Aᵀ: A's last two dimensions are stored [K, M]. */
  transposeA?: boolean;
  /** Use Bᵀ: B's last two dimensions are stored [N, K]. */
  transposeB?: boolean;
}

/** How a matmul call is run: the shapes its operands and result are viewed as. */
interface MatmulViews {
  /** A as the kernel reads it (2-D when folded). */
  a: readonly number[];
  /** B as the kernel reads it. */
  b: readonly number[];
  /** C as the kernel writes it. */
  out: readonly number[];
  /** C as `matmul` returns it. */
  result: readonly number[];
}

/** Checks `matmul`'s operands (naming both shapes) and chooses the views it runs on. */
function matmulViews(a: Tensor, b: Tensor, transposeA: boolean, transposeB: boolean): MatmulViews {
  const shapes = `${formatShape(a.shape)} and ${formatShape(b.shape)}`;
  if (a.rank === 0 || b.rank === 0) {
    throw new Error(`matmul: both arguments need at least 1 dimension, got ${shapes}`);
  }
  for (const [flag, name, t] of [[transposeA, "A", a], [transposeB, "B", b]] as const) {
    if (flag && t.rank < 2) {
      throw new Error(
        `matmul: transpose${name} needs ${name} with at least 2 dimensions, got ${name} ` +
          `${formatShape(t.shape)} (A ${formatShape(a.shape)}, B ${formatShape(b.shape)})`,
      );
    }
  }
  // torch.matmul: a 1-D A is a row [1, K], a 1-D B a column [K, 1]; the result drops that dim.
  const aShape = a.rank === 1 ? [1, a.shape[0]] : a.shape;
  const bShape = b.rank === 1 ? [b.shape[0], 1] : b.shape;
  const [aRows, aCols] = aShape.slice(-2), [bRows, bCols] = bShape.slice(-2);
  const [m, k] = transposeA ? [aCols, aRows] : [aRows, aCols];
  const [kb, n] = transposeB ? [bCols, bRows] : [bRows, bCols];
  if (k !== kb) {
    const side = (name: string, t: Tensor, flag: boolean, dim: string) =>
      `${flag ? `${name}ᵀ of ` : ""}${name} ${formatShape(t.shape)} has ${dim}`;
    throw new Error(
      `matmul: inner dimensions differ: ${side("A", a, transposeA, `K = ${k}`)}, ` +
        `${side("B", b, transposeB, `K = ${kb}`)} (${
          a.rank === 1 ? "A's only" : transposeA ? "A's dimension -2" : "A's last"
        } dimension must equal ${
          b.rank === 1 ? "B's only" : transposeB ? "B's last" : "B's dimension -2"
        } one)`,
    );
  }
  const aBatch = aShape.slice(0, -2), bBatch = bShape.slice(0, -2);
  const batch = broadcastBatch(aBatch, bBatch);
  if (!batch) {
    throw new Error(
      `matmul: batch dimensions do not broadcast: A ${formatShape(a.shape)} has batch ` +
        `${formatShape(aBatch)}, B ${formatShape(b.shape)} has batch ${formatShape(bBatch)}`,
    );
  }
  const result = [...batch, ...(a.rank === 1 ? [] : [m]), ...(b.rank === 1 ? [] : [n])];
  const aCount = sizeOf(aBatch), bCount = sizeOf(bBatch);
  // A stack times one matrix is one matrix of stacked rows (when A's rows are rows in memory).
  if (bCount === 1 && (!transposeA || aCount === 1)) {
    return {
      a: transposeA ? [k, m] : [aCount * m, k],
      b: transposeB ? [n, k] : [k, n],
      out: [aCount * m, n],
      result,
    };
  }
  return { a: aShape, b: bShape, out: [...batch, m, n], result };
}

/**
 * Matrix product as `torch.matmul`, op(A) · op(B), where op transposes the last two dimensions
 * when asked (without a transpose pass). 1-D · 1-D is a dot product (0-d); a 1-D A is a row
 * vector and a 1-D B a column, whose dimension the result drops; operands of rank > 2 are stacks
 * of matrices whose batch dimensions broadcast (`[2, 1, 3, 4] @ [5, 4, 6]` is `[2, 5, 3, 6]`).
 * Differentiable; gradients are summed over broadcast batch dimensions.
 *
 * @param a the left operand, at least 1-D
 * @param b the right operand, at least 1-D
 * @param options which operands to transpose
 * @returns the product, of shape `[...batch, M, N]` less the dimensions of 1-D operands
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const transposeA = options.transposeA ?? false, transposeB = options.transposeB ?? false;
  checkFloat("matmul", a, b);
  const views = matmulViews(a, b, transposeA, transposeB);
  const av = shaped(a, views.a), bv = shaped(b, views.b);
  const full = product(av, bv, transposeA, transposeB);
  release(av, a);
  release(bv, b);
  const out = shaped(full, views.result);
  release(full, out);
  return recordOp("matmul", out, [a, b], (grad) => {
    const g = shaped(grad, views.out);
    // The 2-D rules, on the views (batched where the forward was): dA = dC · op(B)ᵀ, dB = op(A)ᵀ · dC.
    const gradA = a.requiresGrad
      ? operandGrad(
        b,
        views.b,
        (bm) => transposeA ? product(bm, g, transposeB, true) : product(g, bm, false, !transposeB),
        {
          view: views.a,
          shape: a.shape,
        },
      )
      : null;
    const gradB = b.requiresGrad
      ? operandGrad(
        a,
        views.a,
        (am) => transposeB ? product(g, am, true, transposeA) : product(am, g, !transposeA, false),
        {
          view: views.b,
          shape: b.shape,
        },
      )
      : null;
    release(g, grad);
    return [gradA, gradB];
  });
}

/**
 * One operand's gradient: `compute(other viewed as otherView)`, summed over the broadcast batch
 * dimensions to the operand's `view`, then given the operand's `shape`.
 */
function operandGrad(
  other: Tensor,
  otherView: readonly number[],
  compute: (other: Tensor) => Tensor,
  operand: { view: readonly number[]; shape: readonly number[] },
): Tensor {
  const o = shaped(other, otherView);
  const full = compute(o);
  release(o, other);
  const summed = sameShape(full.shape, operand.view) ? full : sumTo(full, operand.view);
  const out = shaped(summed, operand.shape);
  release(summed, out);
  return out;
}

/** Sums a [rows, cols] tensor over its rows: one lane per column. */
const SUM_ROWS: KernelSpec<{ rows: number; cols: number }> = {
  name: "sum_rows",
  key: ({ rows, cols }) => `${rows}x${cols}`,
  bindings: () => [{ name: "x", role: "input", readOnce: true }, { name: "out", role: "write" }],
  plan: ({ cols }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(cols / policy.elementwiseWorkgroup),
  }),
  body: ({ rows, cols }, { plan }) => /* wgsl */ `
  let col = group * ${u32(plan.workgroupSize)} + lid;
  if (col >= ${u32(cols)}) { return; }
  var total = 0.0;
  for (var row = 0u; row < ${u32(rows)}; row++) { total += xAt(row * ${u32(cols)} + col); }
  out[col] = total;`,
};

/** Sums a [rows, cols] tensor over its rows: the gradient of a bias added to every row. */
function sumRows(x: Tensor): Tensor {
  const [rows, cols] = x.shape;
  const out = Tensor.empty([cols]);
  runKernel(SUM_ROWS, { rows, cols }, { x, out });
  return out;
}

/**
 * y = x · weightᵀ + bias, as `torch.nn.functional.linear`: x [*, in] (any leading dimensions, or
 * none: [in] gives [out]), weight [out, in], bias [out]. The leading dimensions are folded into
 * rows (a view, no copy): one kernel forward; backward computes only the gradients that are
 * needed.
 *
 * @param x the input, [*, in]
 * @param weight the weight, [out, in]
 * @param bias the bias, [out], if any
 * @returns [*, out]
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  return linearWithEpilogue(x, weight, { bias });
}

/** What `linearWithEpilogue` applies after the bias, in the matmul kernel's stores. */
export interface LinearEpilogue {
  /** The bias, [out], if any. */
  bias?: Tensor;
  /** Relu (NaN kept), as `relu`. */
  relu?: boolean;
  /** Then dropout's mask (training, p in (0, 1)), as `dropout` with these options. */
  dropout?: { p: number; seed: number };
  /**
   * The gradient of the sums (x · weightᵀ + bias) from the output's gradient and the output:
   * required with `relu` or `dropout`.
   */
  sumsGrad?: (grad: Tensor, out: Tensor) => Tensor;
  /** The op's name in the graph (default "linear"). */
  name?: string;
  /**
   * Also writes log_softmax of the output's rows into this [rows, out] tensor, in the same kernel
   * (needs a 2-D input and `logSoftmaxEpilogueApplies`; not recorded here).
   */
  logProbs?: Tensor;
}

/**
 * Whether `linearWithEpilogue` can write log_softmax of its rows from the matmul's kernel for an
 * input [rows, inFeatures] and outFeatures outputs: when each lane holds whole rows (few outputs).
 */
export function logSoftmaxEpilogueApplies(
  rows: number,
  inFeatures: number,
  outFeatures: number,
): boolean {
  if (rows <= 0 || inFeatures <= 0 || outFeatures <= 0) return false;
  const shape = linearShape(rows, inFeatures, outFeatures, { bias: true, relu: false });
  return wholeRows(shape, planMatmul(shape, kernelPolicy()));
}

/** The matmul of a linear layer: x [rows, in] · weightᵀ, weight stored [out, in]. */
function linearShape(
  rows: number,
  inFeatures: number,
  outFeatures: number,
  epilogue: Pick<MatmulShape, "bias" | "relu" | "dropout" | "logSoftmax">,
): MatmulShape {
  return {
    m: rows,
    n: outFeatures,
    k: inFeatures,
    transposeA: false,
    transposeB: true,
    ...epilogue,
  };
}

/**
 * `linear` with an elementwise epilogue in the same kernel (fused layers such as
 * Linear → ReLU → Dropout): the sums are the same as `linear`'s, and the backward is `linear`'s
 * applied to `sumsGrad(grad, out)`.
 */
export function linearWithEpilogue(x: Tensor, weight: Tensor, epilogue: LinearEpilogue): Tensor {
  const { bias, relu = false, dropout, sumsGrad, name = "linear", logProbs } = epilogue;
  if ((relu || dropout) && !sumsGrad) {
    throw new Error(`${name}: an epilogue (relu, dropout) needs its sumsGrad`);
  }
  checkFloat(name, x, weight, ...(bias ? [bias] : []));
  if (x.rank < 1 || weight.rank !== 2 || x.shape.at(-1) !== weight.shape[1]) {
    throw new Error(
      `linear: input ${formatShape(x.shape)} does not fit weight ${formatShape(weight.shape)} ` +
        `(needs input [*, ${weight.shape[1] ?? "in"}] for weight [out, in])`,
    );
  }
  const inFeatures = weight.shape[1];
  const outFeatures = weight.shape[0];
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outFeatures)) {
    throw new Error(
      `linear: bias ${formatShape(bias.shape)} does not fit weight ${
        formatShape(weight.shape)
      } (needs [${outFeatures}])`,
    );
  }
  const rows = sizeOf(x.shape.slice(0, -1));
  const outShape = [...x.shape.slice(0, -1), outFeatures];
  const shape = linearShape(rows, inFeatures, outFeatures, {
    bias: !!bias,
    relu,
    ...(dropout ? { dropout: dropout.p } : {}),
    ...(logProbs ? { logSoftmax: true } : {}),
  });
  if (logProbs && (x.rank !== 2 || !sameShape(logProbs.shape, [rows, outFeatures]))) {
    throw new Error(`${name}: a log_softmax epilogue needs a 2-D input and logProbs [rows, out]`);
  }
  const x2 = shaped(x, [rows, inFeatures]);
  const out2 = matmulKernel(x2, weight, shape, { bias, seed: dropout?.seed, logProbs });
  release(x2, x);
  const out = shaped(out2, outShape);
  release(out2, out);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return recordOp(name, out, inputs, (outGrad) => {
    const grad = sumsGrad ? sumsGrad(outGrad, out) : outGrad;
    const g = shaped(grad, [rows, outFeatures]);
    let gradX: Tensor | null = null, gradWeight: Tensor | null = null;
    if (x.requiresGrad) {
      const gx = matmul(g, weight);
      gradX = shaped(gx, x.shape);
      release(gx, gradX);
    }
    let gradBias: Tensor | null = null;
    if (weight.requiresGrad) {
      const xm = shaped(x, [rows, inFeatures]);
      const tn: MatmulShape = {
        m: outFeatures,
        n: inFeatures,
        k: rows,
        transposeA: true,
        transposeB: false,
        bias: false,
        relu: false,
      };
      if (bias?.requiresGrad && rowSumsApply(tn)) {
        // One kernel: dW = gᵀ · x and dbias = the column sums of g.
        gradBias = Tensor.empty([outFeatures]);
        gradWeight = matmulKernel(g, xm, { ...tn, rowSums: true }, {
          sums: gradBias,
        });
      } else {
        gradWeight = matmul(g, xm, { transposeA: true });
      }
      release(xm, x);
    }
    if (bias?.requiresGrad && !gradBias) gradBias = sumRows(g);
    release(g, grad);
    if (grad !== outGrad) grad.dispose();
    return [gradX, gradWeight, gradBias];
  });
}
