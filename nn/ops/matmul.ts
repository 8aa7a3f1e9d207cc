/**
 * Matrix multiply C = op(A) · op(B) with either operand transposed in place (no transpose pass),
 * an optional fused bias + ReLU epilogue, and `linear(x, weight, bias)` built on it.
 *
 * The kernel is register-blocked for llvmpipe (see docs/DESIGN.md): one output dimension is
 * "uniform" — each workgroup owns `tileU` indices of it, so every lane loads those values at
 * the same address (a scalar load and a broadcast) — and the other is spread over the lanes,
 * each lane owning `tileL` indices of it. Every lane accumulates a tileU × tileL block of C in
 * registers, stepping K four at a time with vec4 loads where the layout allows.
 *
 * @module
 */

import { recordOp } from "../autograd.ts";
import { u32 } from "../gpu/kernel.ts";
import type { KernelPolicy } from "../gpu/policy.ts";
import { type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";

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
  /** Applies max(·, 0) after the bias. */
  relu: boolean;
}

/** One operand as the kernel sees it: its own dimension `d` and the shared K. */
interface Operand {
  /** WGSL name of the binding. */
  name: string;
  /** Size of the operand's own dimension. */
  dim: number;
  /** True when consecutive k are adjacent in memory (element (d, k) at d*K + k). */
  contiguousK: boolean;
}

/** The plan chosen for a shape under `policy`. */
function planMatmul(shape: MatmulShape, policy: KernelPolicy): MatmulPlan {
  const lanesOn = shape.n >= 32 || shape.n >= shape.m ? "n" : "m";
  const uniformDim = lanesOn === "n" ? shape.m : shape.n;
  const laneDim = lanesOn === "n" ? shape.n : shape.m;
  const workgroupSize = policy.narrowWorkgroup;
  // Measured on llvmpipe (bench): 16x8 register blocks reach 11-14 GFLOP/s on the MLP's shapes.
  const tileU = uniformDim <= 16 ? uniformDim : 16;
  const tileL = laneDim >= workgroupSize * 8 ? 8 : 4;
  const groups: [number, number] = [
    Math.ceil(laneDim / (workgroupSize * tileL)),
    Math.ceil(uniformDim / tileU),
  ];
  return { lanesOn, tileU, tileL, workgroupSize, groups };
}

function operands(shape: MatmulShape, plan: MatmulPlan): { u: Operand; l: Operand } {
  const a: Operand = { name: "a", dim: shape.m, contiguousK: !shape.transposeA };
  const b: Operand = { name: "b", dim: shape.n, contiguousK: shape.transposeB };
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
      return ds.map((d, i) => `let ${target}${i} = ${op.name}Vec4((${d} * ${K} + k0) / 4u);`).join(
        "\n",
      );
    }
    return ds.map((d, i) => {
      const base = `${d} * ${K} + k0`;
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
          `let ${target}_t${g}_${j} = ${op.name}Vec4(((k0 + ${j}u) * ${D} + ${ds[g]}) / 4u);`,
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
    `let ${target}${i} = vec4<f32>(${op.name}At(k0 * ${D} + ${d}), ${op.name}At((k0 + 1u) * ${D} + ${d}), ` +
    `${op.name}At((k0 + 2u) * ${D} + ${d}), ${op.name}At((k0 + 3u) * ${D} + ${d}));`
  ).join("\n");
}

/** Whether `op` can be read as vec4 for a tile of `tile` indices starting at multiples of it. */
function canVec4(op: Operand, k: number, tile: number): boolean {
  return op.contiguousK ? k % 4 === 0 : op.dim % 4 === 0 && tile % 4 === 0;
}

function scalarAt(op: Operand, k: number, d: string, kk: string): string {
  return op.contiguousK
    ? `${op.name}At(${d} * ${u32(k)} + ${kk})`
    : `${op.name}At(${kk} * ${u32(op.dim)} + ${d})`;
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
  const tail = Array.from({ length: shape.k - kMain }, (_, t) => {
    const kk = u32(kMain + t);
    const lines = [
      ...uIdx.map((d, i) => `let ut${i}_${t} = ${scalarAt(u, shape.k, d, kk)};`),
      ...lIdx.map((d, j) => `let lt${j}_${t} = ${scalarAt(l, shape.k, d, kk)};`),
      ...uIdx.flatMap((_, i) => lIdx.map((_, j) => `${acc(i, j)} += ut${i}_${t} * lt${j}_${t};`)),
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
      if (shape.relu) value = `max(${value}, 0.0)`;
      return `if (${inRange}) { c[${row} * ${u32(shape.n)} + ${col}] = ${value}; }`;
    })
  ).join("\n");
  return /* wgsl */ `
  // C[${shape.m}x${shape.n}] = ${shape.transposeA ? "Aᵀ" : "A"} · ${
    shape.transposeB ? "Bᵀ" : "B"
  }, K = ${shape.k}
  let uBase = wid.y * ${u32(tileU)};
  let lBase = (wid.x * ${u32(workgroupSize)} + lid) * ${u32(tileL)};
  ${declare(uIdx, "uBase", uClampLast, uVec4 && !u.contiguousK)}
  ${declare(lIdx, "lBase", lClampLast, lVec4 && !l.contiguousK)}
  ${accumulators}
  for (var k0 = 0u; k0 < ${u32(kMain)}; k0 += 4u) {
    ${loadBlock(u, shape.k, "uv", uIdx, uVec4)}
    ${loadBlock(l, shape.k, "lv", lIdx, lVec4)}
    ${fmas}
  }
  ${tail}
  ${uIdx.map((_, i) => `let uRow${i} = uBase + ${u32(i)};`).join("\n")}
  ${lIdx.map((_, j) => `let lRow${j} = lBase + ${u32(j)};`).join("\n")}
  ${stores}`;
}

/** The matmul kernel: A and B read as inputs, C written, an optional bias read. */
const MATMUL: KernelSpec<MatmulShape, MatmulPlan> = {
  name: "matmul",
  key: (s) =>
    `${s.transposeA ? "t" : "n"}${s.transposeB ? "t" : "n"}_${s.m}x${s.n}x${s.k}` +
    (s.bias ? "_bias" : "") + (s.relu ? "_relu" : ""),
  bindings: (s) => [
    { name: "a", role: "input" },
    { name: "b", role: "input" },
    { name: "c", role: "write" },
    ...(s.bias ? [{ name: "bias", role: "read" } as const] : []),
  ],
  plan: planMatmul,
  body: (shape, { plan }) => matmulBody(shape, plan),
};

/** Encodes C = op(A) · op(B) (+ bias, relu) into a new [M, N] tensor. */
function matmulKernel(
  a: Tensor,
  b: Tensor,
  shape: MatmulShape,
  options: { bias?: Tensor } = {},
): Tensor {
  // An empty product has nothing to compute (and no kernel plan for a 0-sized dimension).
  if (shape.m === 0 || shape.n === 0) return Tensor.empty([shape.m, shape.n]);
  const out = Tensor.empty([shape.m, shape.n]);
  runKernel(MATMUL, shape, { a, b, c: out, ...(options.bias ? { bias: options.bias } : {}) });
  return out;
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
  /** Use Aᵀ: A is stored [K, M]. */
  transposeA?: boolean;
  /** Use Bᵀ: B is stored [N, K]. */
  transposeB?: boolean;
}

/**
 * Matrix product of 2-D tensors, op(A) · op(B), where op transposes when asked (without a
 * transpose pass). Differentiable.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const transposeA = options.transposeA ?? false, transposeB = options.transposeB ?? false;
  checkFloat("matmul", a, b);
  if (a.rank !== 2 || b.rank !== 2) {
    throw new Error(
      `matmul: needs 2-D tensors, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`,
    );
  }
  const [m, k] = transposeA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [kb, n] = transposeB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (k !== kb) {
    throw new Error(
      `matmul: inner dimensions differ: ${transposeA ? "Aᵀ" : "A"} is [${m}, ${k}] ` +
        `(A ${formatShape(a.shape)}) and ${transposeB ? "Bᵀ" : "B"} is [${kb}, ${n}] (B ${
          formatShape(b.shape)
        })`,
    );
  }
  const shape = { m, n, k, transposeA, transposeB, bias: false, relu: false };
  const out = matmulKernel(a, b, shape);
  return recordOp("matmul", out, [a, b], (grad) => [
    !a.requiresGrad
      ? null
      : transposeA
      ? matmul(b, grad, { transposeA: transposeB, transposeB: true })
      : matmul(grad, b, { transposeB: !transposeB }),
    !b.requiresGrad
      ? null
      : transposeB
      ? matmul(grad, a, { transposeA: true, transposeB: transposeA })
      : matmul(a, grad, { transposeA: !transposeA }),
  ]);
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
 * y = x · weightᵀ + bias, as `torch.nn.functional.linear`: x [N, in], weight [out, in],
 * bias [out]. One kernel forward; backward computes only the gradients that are needed.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  checkFloat("linear", x, weight, ...(bias ? [bias] : []));
  if (x.rank !== 2 || weight.rank !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new Error(
      `linear: input ${formatShape(x.shape)} does not fit weight ${formatShape(weight.shape)} ` +
        `(needs input [N, ${weight.shape[1] ?? "in"}] for weight [out, in])`,
    );
  }
  const [n, inFeatures] = x.shape;
  const outFeatures = weight.shape[0];
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outFeatures)) {
    throw new Error(
      `linear: bias ${formatShape(bias.shape)} does not fit weight ${
        formatShape(weight.shape)
      } (needs [${outFeatures}])`,
    );
  }
  const shape = {
    m: n,
    n: outFeatures,
    k: inFeatures,
    transposeA: false,
    transposeB: true,
    bias: !!bias,
    relu: false,
  };
  const out = matmulKernel(x, weight, shape, { bias });
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return recordOp("linear", out, inputs, (grad) => [
    x.requiresGrad ? matmul(grad, weight) : null,
    weight.requiresGrad ? matmul(grad, x, { transposeA: true }) : null,
    bias?.requiresGrad ? sumRows(grad) : null,
  ]);
}
