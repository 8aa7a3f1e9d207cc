/**
 * Softmax, log-softmax and their gradients over long contiguous rows with one workgroup per row:
 * its invocations read the row in turn (neighbouring invocations, neighbouring addresses) and
 * combine their maxima and sums in workgroup memory. On a GPU this turns a few hundred
 * invocations that each walk a whole row into a workgroup per row; on llvmpipe workgroup memory
 * and barriers are dear, so the policy keeps one invocation per row there
 * (`KernelPolicy.cooperativeRowLength`).
 *
 * @module
 */

import { u32 } from "../gpu/kernel.ts";
import type { KernelPlan, KernelSpec } from "../gpu/program.ts";
import { isNan, isNan4 } from "./nan_wgsl.ts";

/** The kernels: forward (`x` → `out`) and backward (`g`, `y` → `dx`). */
export type RowKind = "softmax" | "log_softmax" | "softmax_backward" | "log_softmax_backward";

/** What a cooperative row kernel is specialised on. */
export interface CooperativeRows {
  kind: RowKind;
  rows: number;
  /** Elements per row (contiguous rows). */
  classes: number;
}

/** The most invocations per workgroup (a power of two; WebGPU guarantees 256). */
const MAX_WORKGROUP = 256;
/** The fewest: a warp or wavefront. */
const MIN_WORKGROUP = 32;
/** Elements an invocation reads per pass at least, so that short rows use fewer invocations. */
const ELEMENTS_PER_INVOCATION = 8;

/** Invocations per row: a power of two giving each about `ELEMENTS_PER_INVOCATION` elements. */
function workgroupFor(classes: number): number {
  let size = MIN_WORKGROUP;
  while (size < MAX_WORKGROUP && size * ELEMENTS_PER_INVOCATION < classes) size *= 2;
  return size;
}

/**
 * WGSL of `fn workgroupMax(lid, v)` (NaN wins, as in PyTorch) and `fn workgroupSum(lid, v)`: the
 * combined value in every invocation. Barriers: call from uniform control flow.
 */
function workgroupCombine(size: number): string {
  const tree = (name: string, combine: string) => /* wgsl */ `
fn ${name}(lid: u32, value: f32) -> f32 {
  partials[lid] = value;
  workgroupBarrier();
  for (var half = ${u32(size / 2)}; half > 0u; half >>= 1u) {
    if (lid < half) { let a = partials[lid]; let b = partials[lid + half]; partials[lid] = ${combine}; }
    workgroupBarrier();
  }
  let result = partials[0];
  workgroupBarrier();
  return result;
}`;
  return `var<workgroup> partials: array<f32, ${size}>;` +
    tree("workgroupMax", `select(max(a, b), a + b, ${isNan("a")} || ${isNan("b")})`) +
    tree("workgroupSum", "a + b");
}

/**
 * The body over one row starting at element `base`: each invocation takes elements `lid`,
 * `lid + WG`, ... (vec4s when the row length is a multiple of 4).
 */
function rowBody(kind: RowKind, classes: number, size: number): string {
  const vec = classes % 4 === 0;
  const n = vec ? classes / 4 : classes;
  const t = vec ? "vec4<f32>" : "f32";
  const read = (name: string) => vec ? `${name}Vec4(base4 + j)` : `${name}At(base + j)`;
  const write = (name: string, value: string) =>
    vec ? `${name}[base4 + j] = ${value};` : `${name}[base + j] = ${value};`;
  const total = (value: string) => vec ? `dot(${value}, vec4<f32>(1.0))` : value;
  const nan = (v: string) => vec ? isNan4(v) : isNan(v);
  const loop = (statements: string) =>
    `for (var j = lid; j < ${u32(n)}; j += ${u32(size)}) { ${statements} }`;
  switch (kind) {
    case "softmax":
    case "log_softmax": {
      const most = vec
        ? `select(max(max(m.x, m.y), max(m.z, m.w)), m.x + m.y + m.z + m.w, any(${nan("m")}))`
        : "m";
      const value = kind === "softmax" ? "exp(v - biggest) * inverse" : "v - biggest - logSum";
      const either = vec ? `${nan("m")} | ${nan("v")}` : `${nan("m")} || ${nan("v")}`;
      const keepNanMax = `select(max(m, v), m + v, ${either})`;
      return /* wgsl */ `
  // -inf from a runtime value: Tint refuses an infinite literal.
  var negInf = 0xff800000u;
  var m = ${t}(bitcast<f32>(negInf));
  // NaN kept once met: WGSL's max may drop it (IEEE's maxNum returns the number).
  ${loop(`let v = ${read("x")}; m = ${keepNanMax};`)}
  let biggest = workgroupMax(lid, ${most});
  var s = ${t}(0.0);
  ${loop(`let d = ${read("x")} - biggest; s += select(exp(d), d, ${nan("d")});`)}
  let sum = workgroupSum(lid, ${total("s")});
  let inverse = 1.0 / sum;
  let logSum = log(sum);
  ${loop(`let v = ${read("x")}; ${write("out", value)}`)}`;
    }
    case "softmax_backward":
      // dx = y * (g - sum(g * y))
      return /* wgsl */ `
  var s = ${t}(0.0);
  ${loop(`s += ${read("g")} * ${read("y")};`)}
  let weighted = workgroupSum(lid, ${total("s")});
  ${loop(write("dx", `${read("y")} * (${read("g")} - weighted)`))}`;
    case "log_softmax_backward":
      // dx = g - exp(y) * sum(g)
      return /* wgsl */ `
  var s = ${t}(0.0);
  ${loop(`s += ${read("g")};`)}
  let sum = workgroupSum(lid, ${total("s")});
  ${loop(write("dx", `${read("g")} - exp(${read("y")}) * sum`))}`;
  }
}

/** One workgroup per row of `classes` contiguous elements. */
export const COOPERATIVE_ROWS: KernelSpec<CooperativeRows> = {
  name: "softmax_rows",
  key: ({ kind, rows, classes }) => `${kind}_${rows}x${classes}`,
  bindings: ({ kind, classes }) => {
    const type = classes % 4 === 0 ? "vec4<f32>" : "f32";
    return kind.endsWith("backward")
      ? [
        { name: "g", role: "input" },
        { name: "y", role: "input" },
        { name: "dx", role: "write", type },
      ]
      : [{ name: "x", role: "input" }, { name: "out", role: "write", type }];
  },
  plan: ({ rows, classes }): KernelPlan => ({ workgroupSize: workgroupFor(classes), groups: rows }),
  prelude: ({ classes }) => workgroupCombine(workgroupFor(classes)),
  body: ({ kind, rows, classes }) => /* wgsl */ `
  // Folded grids run a few workgroups past the rows: they return together (uniform control flow).
  if (group >= ${u32(rows)}) { return; }
  let base = group * ${u32(classes)};
  let base4 = base / 4u;
${rowBody(kind, classes, workgroupFor(classes))}`,
};
