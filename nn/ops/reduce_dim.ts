/**
 * The kernels of reductions over dimensions: one generic kernel that reduces a tensor over any
 * set of dimensions (`REDUCE`), and one that spreads a per-output gradient back over the reduced
 * elements (`EXPAND`). The ops themselves (`sum`, `max`, `variance`, ...) live in `reduce.ts`.
 *
 * Shapes are simplified before they are baked in: size-1 dimensions are dropped and adjacent
 * dimensions that are both reduced (or both kept) are merged, so [N, C, H, W] over [2, 3] is
 * [N·C, H·W] over its last dimension. Each invocation owns one output (a loop over its reduced
 * elements, in row-major order), or four when that reads whole vec4s:
 *
 * - `row`: the innermost dimension is reduced and a multiple of 4: each invocation reads its
 *   elements 4 at a time (sum over dim 1 of [1024, 1024]);
 * - `column`: the innermost dimension is kept and a multiple of 4: each invocation owns 4
 *   adjacent outputs and reads one vec4 per reduced element (sum over dim 0 of [1024, 1024]:
 *   neighbouring invocations read neighbouring addresses);
 * - `scalar`: otherwise, one element at a time.
 *
 * A reducer is written once as WGSL statements on accumulators named with a suffix (one set per
 * output an invocation owns), in passes over the reduced elements (var: the mean, then the
 * squared deviations).
 *
 * Under the hardware policy, `sum` and `mean` in row and column mode with many elements per
 * output (`cooperativeRowLength`) take `SPLIT_SUM`: a workgroup's invocations share each output's
 * elements and add their partials in workgroup memory.
 *
 * Not done yet: other reductions with few outputs and many elements each (max over all elements
 * of [1024, 1024]) run on as many lanes as they have outputs (about 1-2 ms on llvmpipe for a
 * million elements; `sum`/`mean` over all elements take their own two-pass kernel). Splitting
 * them would need a combine step per reducer.
 *
 * @module
 */

import { f32, u32 } from "../gpu/kernel.ts";
import { kernelPolicy } from "../gpu/policy.ts";
import { type BindingSpec, type KernelPlan, type KernelSpec, runKernel } from "../gpu/program.ts";
import { formatShape, Tensor } from "../tensor.ts";

/** A run of dimensions after simplification: its size, and whether it is reduced. */
export interface Segment {
  /** The product of the sizes of its dimensions. */
  size: number;
  /** Whether its dimensions are reduced (else kept). */
  reduced: boolean;
}

/** The reductions `REDUCE` computes. */
export type ReduceKind =
  | "sum"
  | "prod"
  | "max"
  | "min"
  | "argmax"
  | "argmin"
  | "max_ties"
  | "min_ties"
  | "var"
  | "std"
  | "logsumexp";

/** Options of `REDUCE`. */
export interface ReduceOptions {
  /** The reduction. */
  kind: ReduceKind;
  /** The input's simplified shape (`segmentsOf`). */
  segments: readonly Segment[];
  /** sum: the factor of the result (1 / count for mean). var: the correction. */
  constant?: number;
}

/**
 * The dimensions `dim` names in a tensor of `shape`, sorted, each in 0..rank-1 (all of them when
 * `dim` is absent or an empty list). Throws naming `op` for out-of-range or repeated dims. A 0-d
 * tensor takes dim 0 or -1 (as PyTorch), which reduce nothing.
 */
export function normalizeDims(
  op: string,
  shape: readonly number[],
  dim: number | readonly number[] | undefined,
): number[] {
  const rank = shape.length;
  if (dim === undefined) return shape.map((_, d) => d);
  const list = typeof dim === "number" ? [dim] : [...dim];
  if (list.length === 0) return shape.map((_, d) => d);
  const wrap = Math.max(rank, 1);
  const out: number[] = [];
  for (const d of list) {
    if (!Number.isInteger(d) || d < -wrap || d >= wrap) {
      throw new Error(
        `${op}: dim ${d} is out of range for a tensor of rank ${rank} ` +
          `(expected ${-wrap}..${wrap - 1})`,
      );
    }
    const normal = d < 0 ? d + wrap : d;
    if (out.includes(normal)) {
      throw new Error(
        `${op}: dim ${normal} appears more than once in ${formatShape(list)} ` +
          `(shape ${formatShape(shape)})`,
      );
    }
    out.push(normal);
  }
  return rank === 0 ? [] : out.sort((a, b) => a - b);
}

/** The output shape of reducing `shape` over `dims` (kept as size 1 when `keepdim`). */
export function reducedShape(
  shape: readonly number[],
  dims: readonly number[],
  keepdim: boolean,
): number[] {
  const out: number[] = [];
  shape.forEach((size, d) => {
    if (!dims.includes(d)) out.push(size);
    else if (keepdim) out.push(1);
  });
  return out;
}

/** `shape` with size-1 dimensions dropped and neighbours of the same kind merged. */
export function segmentsOf(shape: readonly number[], dims: readonly number[]): Segment[] {
  const segments: Segment[] = [];
  shape.forEach((size, d) => {
    if (size === 1) return;
    const reduced = dims.includes(d);
    const last = segments.at(-1);
    if (last && last.reduced === reduced) last.size *= size;
    else segments.push({ size, reduced });
  });
  return segments;
}

function product(sizes: readonly number[]): number {
  return sizes.reduce((a, b) => a * b, 1);
}

/** How an invocation reads (see the module's documentation). */
type Mode = "row" | "column" | "scalar";

/** The sizes the code is generated from. */
interface Layout {
  mode: Mode;
  /** Outputs (kept elements) and reduced elements per output. */
  outputs: number;
  count: number;
  /** Outputs per invocation (4 in column mode). */
  lanes: number;
}

function layoutOf(segments: readonly Segment[]): Layout {
  const outputs = product(segments.filter((s) => !s.reduced).map((s) => s.size));
  const count = product(segments.filter((s) => s.reduced).map((s) => s.size));
  const last = segments.at(-1);
  const mode: Mode = !last || last.size % 4 !== 0 ? "scalar" : last.reduced ? "row" : "column";
  return { mode, outputs, count, lanes: mode === "column" ? 4 : 1 };
}

/**
 * WGSL statements adding to `target` the input offset of coordinate `index` (a u32 variable
 * name, consumed) over the segments of one kind, innermost first.
 */
function decode(
  segments: readonly Segment[],
  reduced: boolean,
  index: string,
  target: string,
): string {
  const strides: number[] = [];
  let stride = 1;
  for (let k = segments.length - 1; k >= 0; k--) {
    strides[k] = stride;
    stride *= segments[k].size;
  }
  const mine = segments.map((s, k) => ({ size: s.size, stride: strides[k], reduced: s.reduced }))
    .filter((s) => s.reduced === reduced);
  const lines: string[] = [];
  for (let k = mine.length - 1; k >= 0; k--) {
    const { size, stride } = mine[k];
    const scaled = (c: string) => stride === 1 ? c : `${c} * ${u32(stride)}`;
    // The outermost segment of the kind takes what is left of the index.
    lines.push(
      k === 0
        ? `${target} += ${scaled(index)};`
        : `{ let c = ${index} % ${u32(size)}; ${index} = ${index} / ${u32(size)}; ` +
          `${target} += ${scaled("c")}; }`,
    );
  }
  return lines.join(" ");
}

/** A reducer: its outputs, its passes over the reduced elements, and what it writes. */
interface Reducer {
  /** Output bindings: the first is `out`. */
  outputs: readonly { name: string; type: "f32" | "i32" }[];
  /**
   * Passes: `init(s, o)` declares the accumulators of suffix `s` for output `o`; `step(s, v, r)`
   * folds in value `v` (an f32 expression, evaluated several times) at reduced index `r`.
   */
  passes: readonly {
    init: (s: string, o: string) => string;
    step: (s: string, v: string, r: string) => string;
  }[];
  /** Writes the outputs of suffix `s` at output index `o`. */
  finish: (s: string, o: string) => string;
}

/** NaN-aware pick of the first extreme: `better` is `>` for max, `<` for min. */
function extremeStep(better: ">" | "<") {
  return (s: string, v: string, r: string) =>
    `if (${r} == 0u || ((${v} ${better} best${s} || isNanF(${v})) && !isNanF(best${s}))) ` +
    `{ best${s} = ${v}; arg${s} = ${r}; }`;
}

function extremeReducer(better: ">" | "<", values: boolean, index: boolean): Reducer {
  const outputs: { name: string; type: "f32" | "i32" }[] = [];
  if (values) outputs.push({ name: "out", type: "f32" });
  if (index) outputs.push({ name: values ? "index" : "out", type: "i32" });
  return {
    outputs,
    passes: [{
      init: (s) => `var best${s} = 0.0; var arg${s} = 0u;`,
      step: extremeStep(better),
    }],
    finish: (s, o) =>
      (values ? `out[${o}] = best${s}; ` : "") +
      (index ? `${values ? "index" : "out"}[${o}] = i32(arg${s});` : ""),
  };
}

/** The extreme value and how many elements tie with it (NaN ties with NaN), for max over all. */
function tiesReducer(better: ">" | "<"): Reducer {
  return {
    outputs: [{ name: "out", type: "f32" }, { name: "ties", type: "f32" }],
    passes: [
      { init: (s) => `var best${s} = 0.0; var arg${s} = 0u;`, step: extremeStep(better) },
      {
        init: (s) => `var nTies${s} = 0.0; let nanBest${s} = isNanF(best${s});`,
        step: (s, v) =>
          `if (${v} == best${s} || (nanBest${s} && isNanF(${v}))) { nTies${s} += 1.0; }`,
      },
    ],
    finish: (s, o) => `out[${o}] = best${s}; ties[${o}] = nTies${s};`,
  };
}

function reducer(kind: ReduceKind, count: number, constant: number): Reducer {
  switch (kind) {
    case "sum":
      return {
        outputs: [{ name: "out", type: "f32" }],
        passes: [{ init: (s) => `var acc${s} = 0.0;`, step: (s, v) => `acc${s} += ${v};` }],
        finish: (s, o) => `out[${o}] = acc${s}${constant === 1 ? "" : ` * ${f32(constant)}`};`,
      };
    case "prod":
      // The product, the product of the nonzero elements and the count of zeros (for backward).
      return {
        outputs: [
          { name: "out", type: "f32" },
          { name: "nonzero", type: "f32" },
          { name: "zeros", type: "f32" },
        ],
        passes: [{
          init: (s) => `var acc${s} = 1.0; var nz${s} = 1.0; var nZeros${s} = 0.0;`,
          step: (s, v) =>
            `acc${s} *= ${v}; if (${v} == 0.0) { nZeros${s} += 1.0; } else { nz${s} *= ${v}; }`,
        }],
        finish: (s, o) => `out[${o}] = acc${s}; nonzero[${o}] = nz${s}; zeros[${o}] = nZeros${s};`,
      };
    case "max":
      return extremeReducer(">", true, true);
    case "min":
      return extremeReducer("<", true, true);
    case "argmax":
      return extremeReducer(">", false, true);
    case "argmin":
      return extremeReducer("<", false, true);
    case "max_ties":
      return tiesReducer(">");
    case "min_ties":
      return tiesReducer("<");
    case "var":
    case "std":
      // Two passes: the mean, then the squared deviations from it. `constant` is the correction.
      return {
        outputs: [{ name: "out", type: "f32" }, { name: "mean", type: "f32" }],
        passes: [
          { init: (s) => `var acc${s} = 0.0;`, step: (s, v) => `acc${s} += ${v};` },
          {
            init: (s) => `let avg${s} = acc${s} * ${f32(1 / count)}; var sq${s} = 0.0;`,
            step: (s, v) => `{ let d = ${v} - avg${s}; sq${s} += d * d; }`,
          },
        ],
        // A divisor <= 0 gives inf or NaN (as PyTorch); it is a runtime division.
        finish: (s, o) =>
          `out[${o}] = ${kind === "std" ? `sqrt(sq${s} / DIVISOR)` : `sq${s} / DIVISOR`}; ` +
          `mean[${o}] = avg${s};`,
      };
    case "logsumexp":
      // The maximum, then the sum of exp(x - max); an infinite max shifts by 0. A NaN makes the
      // sum NaN whether or not the maximum kept it (so the plain, branch-free max will do).
      return {
        outputs: [{ name: "out", type: "f32" }],
        passes: [
          {
            // -inf from a runtime value: Tint refuses an infinite literal.
            init: (s) => `var negInf${s} = 0xff800000u; var best${s} = bitcast<f32>(negInf${s});`,
            step: (s, v) => `best${s} = max(best${s}, ${v});`,
          },
          {
            init: (s) =>
              `let shift${s} = select(best${s}, 0.0, isInfF(best${s})); var acc${s} = 0.0;`,
            // NaN and log(0) made explicit: WGSL leaves exp(NaN) and log(0) to the adapter
            // (SwiftShader: inf and -88).
            step: (s, v) =>
              `{ let d = ${v} - shift${s}; acc${s} += select(exp(d), d, isNanF(d)); }`,
          },
        ],
        finish: (s, o) =>
          `out[${o}] = select(select(log(acc${s}), bitcast<f32>(negInf${s}), acc${s} == 0.0) + ` +
          `shift${s}, acc${s}, isNanF(acc${s}));`,
      };
  }
}

/** Number of outputs one invocation owns, and the plan. */
function reducePlan({ segments }: ReduceOptions, workgroupSize: number): KernelPlan {
  const { outputs, lanes } = layoutOf(segments);
  return { workgroupSize, groups: Math.ceil(outputs / lanes / workgroupSize) };
}

const SUFFIXES = ["0", "1", "2", "3"];
const COMPONENTS = ["x", "y", "z", "w"];

/** `out = reduction of x over the reduced segments`, one (or four) outputs per invocation. */
const REDUCE: KernelSpec<ReduceOptions> = {
  name: "reduce_dim",
  key: ({ kind, segments, constant }) =>
    `${kind}_${segments.map((s) => `${s.size}${s.reduced ? "r" : "k"}`).join("_") || "0d"}` +
    (constant === undefined ? "" : `_${constant}`),
  bindings: ({ kind, segments, constant }) => {
    const { count } = layoutOf(segments);
    const r = reducer(kind, count, constant ?? 1);
    return [
      { name: "x", role: "input", readOnce: true },
      ...r.outputs.map((o): BindingSpec => ({ name: o.name, role: "write", type: o.type })),
    ];
  },
  plan: (options, policy) => reducePlan(options, policy.narrowWorkgroup),
  prelude: ({ kind, segments, constant }) => {
    const { count, outputs } = layoutOf(segments);
    return /* wgsl */ `
const OUTPUTS: u32 = ${u32(outputs)};
const COUNT: u32 = ${u32(count)};
${
      kind === "var" || kind === "std"
        ? `const DIVISOR: f32 = ${f32(Math.max(0, count - (constant ?? 1)))};`
        : ""
    }
fn isNanF(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn isInfF(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) == 0x7f800000u; }`;
  },
  body: ({ kind, segments, constant }, { plan }) => {
    const { mode, count } = layoutOf(segments);
    const r = reducer(kind, count, constant ?? 1);
    const suffixes = mode === "column" ? SUFFIXES : [""];
    const outIndex = (k: number) => mode === "column" ? `o + ${u32(k)}` : "o";
    const reducedDecode = decode(segments, true, "q", "offset");
    const passes = r.passes.map((pass) => {
      const inits = suffixes.map((s, k) => pass.init(s, outIndex(k))).join("\n    ");
      let loop: string;
      if (mode === "row") {
        const steps = COMPONENTS.map((c, k) => pass.step("", `v.${c}`, `r + ${u32(k)}`));
        loop = `for (var r = 0u; r < COUNT; r += 4u) {
      var q = r; var offset = base; ${reducedDecode}
      let v = xVec4(offset >> 2u);
      ${steps.join("\n      ")}
    }`;
      } else if (mode === "column") {
        const steps = COMPONENTS.map((c, k) => pass.step(SUFFIXES[k], `v.${c}`, "r"));
        loop = `for (var r = 0u; r < COUNT; r++) {
      var q = r; var offset = base; ${reducedDecode}
      let v = xVec4(offset >> 2u);
      ${steps.join("\n      ")}
    }`;
      } else {
        loop = `for (var r = 0u; r < COUNT; r++) {
      var q = r; var offset = base; ${reducedDecode}
      let v = xAt(offset);
      ${pass.step("", "v", "r")}
    }`;
      }
      return `    ${inits}\n    ${loop}`;
    });
    const finish = suffixes.map((s, k) => r.finish(s, outIndex(k))).join("\n    ");
    const lanes = mode === "column" ? 4 : 1;
    return /* wgsl */ `
  let o = (group * ${u32(plan.workgroupSize)} + lid) * ${u32(lanes)};
  if (o < OUTPUTS) {
    var rest = o; var base = 0u; ${decode(segments, false, "rest", "base")}
${passes.join("\n")}
    ${finish}
  }`;
  },
};

/** A sum's layout, split over a workgroup: `across` outputs (vec4s in column mode) by `along`. */
interface SplitSumOptions {
  segments: readonly Segment[];
  constant: number;
}

/** How `SPLIT_SUM` shares a workgroup of 256: invocations across outputs and along the sum. */
function splitShape(segments: readonly Segment[]): { across: number; along: number } {
  const { mode, outputs, count } = layoutOf(segments);
  if (mode === "row") {
    let along = 32;
    while (along < 256 && along * 4 * 8 < count) along *= 2;
    return { across: 1, along };
  }
  const columns = outputs / 4;
  let across = 1;
  while (across < 4 && across < columns) across *= 2;
  if (columns >= 4096) across = 16;
  return { across, along: 256 / across };
}

/**
 * `sum` (and `mean`) over dims with many elements per output, for the hardware policy: each
 * workgroup owns `across` outputs (vec4s of 4 neighbouring outputs in column mode, a row each in
 * row mode) and its `along` invocations per output take every along-th reduced element, then add
 * their partial sums in workgroup memory. The summation order differs from `REDUCE`'s (a tree
 * over the partials), as a GPU reduction's does.
 */
const SPLIT_SUM: KernelSpec<SplitSumOptions> = {
  name: "reduce_dim_split_sum",
  key: ({ segments, constant }) =>
    `${segments.map((s) => `${s.size}${s.reduced ? "r" : "k"}`).join("_")}_${constant}`,
  bindings: () => [
    { name: "x", role: "input", readOnce: true },
    { name: "out", role: "write", type: "f32" },
  ],
  plan: ({ segments }) => {
    const { mode, outputs } = layoutOf(segments);
    const { across, along } = splitShape(segments);
    const owners = mode === "column" ? outputs / 4 : outputs;
    return { workgroupSize: across * along, groups: Math.ceil(owners / across) };
  },
  prelude: ({ segments }) => {
    const { across, along } = splitShape(segments);
    return `var<workgroup> partials: array<vec4<f32>, ${u32(across * along)}>;`;
  },
  body: ({ segments, constant }) => {
    const { mode, outputs, count } = layoutOf(segments);
    const { across, along } = splitShape(segments);
    const column = mode === "column";
    const step = column ? 1 : 4;
    const scale = constant === 1 ? "" : ` * ${f32(constant)}`;
    const stores = column
      ? COMPONENTS.map((c, k) => `out[o + ${u32(k)}] = total.${c}${scale};`).join(" ")
      : `out[o] = dot(total, vec4<f32>(1.0))${scale};`;
    return /* wgsl */ `
  let owner = lid % ${u32(across)};
  let slice = lid / ${u32(across)};
  let o = (group * ${u32(across)} + owner)${column ? " * 4u" : ""};
  var acc = vec4<f32>(0.0);
  if (o < ${u32(outputs)}) {
    var rest = o; var base = 0u; ${decode(segments, false, "rest", "base")}
    for (var r = slice * ${u32(step)}; r < ${u32(count)}; r += ${u32(along * step)}) {
      var q = r; var offset = base; ${decode(segments, true, "q", "offset")}
      acc += xVec4(offset >> 2u);
    }
  }
  partials[lid] = acc;
  workgroupBarrier();
  for (var half = ${u32(along / 2)}; half > 0u; half >>= 1u) {
    if (slice < half) { partials[lid] += partials[lid + half * ${u32(across)}]; }
    workgroupBarrier();
  }
  if (slice == 0u && o < ${u32(outputs)}) {
    let total = partials[owner];
    ${stores}
  }`;
  },
};

/**
 * Runs `REDUCE` of `kind` on `x` over `dims`: the outputs (the first of `outShape`, the others
 * of the same size) by binding name. The reduced count must be at least 1.
 */
export function runReduce(
  kind: ReduceKind,
  x: Tensor,
  dims: readonly number[],
  outShape: readonly number[],
  constant?: number,
): Record<string, Tensor> {
  const segments = segmentsOf(x.shape, dims);
  const options: ReduceOptions = { kind, segments, constant };
  const { count } = layoutOf(segments);
  const outputs = reducer(kind, count, constant ?? 1).outputs;
  const tensors: Record<string, Tensor> = {};
  for (const output of outputs) tensors[output.name] = Tensor.empty(outShape, output.type);
  if (tensors.out.size === 0) return tensors;
  if (
    kind === "sum" && layoutOf(segments).mode !== "scalar" &&
    count >= kernelPolicy().cooperativeRowLength
  ) {
    runKernel(SPLIT_SUM, { segments, constant: constant ?? 1 }, { x, ...tensors });
  } else {
    runKernel(REDUCE, options, { x, ...tensors });
  }
  return tensors;
}

/** The backward expressions `EXPAND` computes (see `expandExpression`). */
export type ExpandKind =
  | "scale"
  | "pick"
  | "ties"
  | "var"
  | "std"
  | "logsumexp"
  | "prod";

/** Options of `EXPAND`. */
export interface ExpandOptions {
  /** The gradient's rule. */
  kind: ExpandKind;
  /** The input's simplified shape (`segmentsOf`). */
  segments: readonly Segment[];
  /** scale: the factor; var, std: the divisor max(0, count - correction). */
  constant?: number;
}

/**
 * The gradient at input element `i` of output `o` (reduced index `r`), as WGSL, from `g` (the
 * output's gradient at o) and, by kind, x (the input at i), y (the output at o) and saved
 * per-output values.
 */
function expandExpression(kind: ExpandKind, constant: number): string {
  switch (kind) {
    case "scale":
      return constant === 1 ? "g" : `g * ${f32(constant)}`;
    case "pick":
      return "select(0.0, g, i32(r) == index[o])";
    case "ties":
      return "select(0.0, g / auxAt(o), x == yAt(o) || (isNanF(x) && isNanF(yAt(o))))";
    case "var":
      return `g * 2.0 * (x - auxAt(o)) / ${f32(constant)}`;
    case "std":
      // PyTorch: no gradient where the standard deviation is 0.
      return `select(g * (x - auxAt(o)) / (${f32(constant)} * yAt(o)), 0.0, yAt(o) == 0.0)`;
    case "logsumexp":
      return "g * exp(x - yAt(o))";
    case "prod":
      // Exact with zeros: no zero, g·y/x; one zero, g·(product of the others) at the zero and 0
      // elsewhere; two or more, 0.
      return "select(select(0.0, g * auxAt(o), zerosAt(o) == 1.0 && x == 0.0), g * yAt(o) / x, " +
        "zerosAt(o) == 0.0)";
  }
}

function expandInputs(kind: ExpandKind): { x: boolean; y: boolean; aux: boolean } {
  return {
    x: kind !== "scale" && kind !== "pick",
    y: kind === "ties" || kind === "std" || kind === "logsumexp" || kind === "prod",
    aux: kind === "ties" || kind === "var" || kind === "std" || kind === "prod",
  };
}

/**
 * dx[i] = the gradient of input element i, from the output gradient `g` (and saved values) at
 * its output o, one element per invocation; o and the reduced index r decoded from i.
 */
const EXPAND: KernelSpec<ExpandOptions> = {
  name: "reduce_dim_backward",
  key: ({ kind, segments, constant }) =>
    `${kind}_${segments.map((s) => `${s.size}${s.reduced ? "r" : "k"}`).join("_") || "0d"}` +
    (constant === undefined ? "" : `_${constant}`),
  bindings: ({ kind }) => {
    const uses = expandInputs(kind);
    const list: BindingSpec[] = [{ name: "g", role: "input" }];
    if (uses.x) list.push({ name: "x", role: "input", readOnce: true });
    if (uses.y) list.push({ name: "y", role: "input" });
    if (uses.aux) list.push({ name: "aux", role: "input" });
    if (kind === "prod") list.push({ name: "zeros", role: "input" });
    if (kind === "pick") list.push({ name: "index", role: "read", type: "i32" });
    list.push({ name: "dx", role: "write" });
    return list;
  },
  plan: ({ segments }, policy) => ({
    workgroupSize: policy.elementwiseWorkgroup,
    groups: Math.ceil(product(segments.map((s) => s.size)) / policy.elementwiseWorkgroup),
  }),
  prelude: () => /* wgsl */ `
fn isNanF(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }`,
  body: ({ kind, segments, constant }, { plan }) => {
    const size = product(segments.map((s) => s.size));
    // Decode i innermost first: kept coordinates build o, reduced ones r.
    const steps: string[] = [];
    let outStride = 1, reducedStride = 1;
    for (let k = segments.length - 1; k >= 0; k--) {
      const { size: n, reduced } = segments[k];
      const target = reduced ? "r" : "o";
      const stride = reduced ? reducedStride : outStride;
      steps.push(
        `{ let c = rest % ${u32(n)}; rest = rest / ${u32(n)}; ${target} += c * ${u32(stride)}; }`,
      );
      if (reduced) reducedStride *= n;
      else outStride *= n;
    }
    const uses = expandInputs(kind);
    return /* wgsl */ `
  let i = group * ${u32(plan.workgroupSize)} + lid;
  if (i < ${u32(size)}) {
    var rest = i; var o = 0u; var r = 0u;
    ${steps.join("\n    ")}
    let g = gAt(o);${uses.x ? " let x = xAt(i);" : ""}
    dx[i] = ${expandExpression(kind, constant ?? 1)};
  }`;
  },
};

/**
 * The gradient of a reduction of `x` (shape `shape`) over `dims`: `EXPAND` of `kind` from the
 * output gradient `g` and the tensors it reads (`x`, `y`, `aux`, `zeros`, `index`).
 */
export function runExpand(
  kind: ExpandKind,
  shape: readonly number[],
  dims: readonly number[],
  resources: Readonly<Record<string, Tensor>>,
  constant: number | undefined,
  dx: Tensor,
): Tensor {
  if (dx.size === 0) return dx;
  const segments = segmentsOf(shape, dims);
  runKernel(EXPAND, { kind, segments, constant }, { ...resources, dx });
  return dx;
}
