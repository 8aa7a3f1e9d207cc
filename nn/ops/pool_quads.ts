/**
 * WGSL pieces of 2×2, stride-2 max pooling by quads: 4 adjacent windows, which cover a 2 × 8
 * block of input (two texels of each of two input rows) and give 4 pooled outputs (one vec4),
 * their 4 argmaxes packed into one float. `maxPool2d`'s packed kernels and
 * `batchNormReluMaxPool2d` share them, so the two agree on window order, ties and packing.
 *
 * Each piece works on the quad whose upper-left texel is `top`; `down` is a WGSL expression for
 * the texels per input row.
 *
 * @module
 */

import { isNan4, relu4 } from "./nan_wgsl.ts";

/** WGSL texel indices of a quad: upper row left and right, then lower row left and right. */
function quadTexels(down: string): string[] {
  return ["top", "top + 1u", `top + ${down}`, `top + ${down} + 1u`];
}

/**
 * WGSL: the quad's 16 values of the texture `x`, each texel mapped by `transform`, as
 * `<name>0`..`<name>3`: the upper-left, upper-right, lower-left and lower-right corners of its
 * 4 windows.
 */
export function quadCorners(
  name: string,
  down: string,
  transform: (texel: string) => string = (texel) => texel,
): string {
  const [a0, a1, b0, b1] = quadTexels(down).map((texel) => transform(`xVec4(${texel})`));
  return /* wgsl */ `
      let ${name}A0 = ${a0};
      let ${name}A1 = ${a1};
      let ${name}B0 = ${b0};
      let ${name}B1 = ${b1};
      // Window corners (upper left, upper right, lower left, lower right) of the 4 windows.
      let ${name}0 = vec4<f32>(${name}A0.xz, ${name}A1.xz);
      let ${name}1 = vec4<f32>(${name}A0.yw, ${name}A1.yw);
      let ${name}2 = vec4<f32>(${name}B0.xz, ${name}B1.xz);
      let ${name}3 = vec4<f32>(${name}B0.yw, ${name}B1.yw);`;
}

/**
 * WGSL: `result`, the maxima of the 4 windows whose corners are `<name>0`..`<name>3` (with
 * `relu`, their ReLU), and `arg`, their argmaxes: 0..3 in window order, the first maximum
 * winning ties (strictly greater wins), or 4 where `relu` gave 0 (no gradient). A NaN wins over
 * any number and the last NaN over earlier ones, as PyTorch's CPU kernel (`val > max ||
 * isnan(val)`), so a window holding NaN gives NaN and sends its gradient to that NaN.
 */
export function quadMax(name: string, relu: boolean): string {
  const corners = [1, 2, 3].map((k) => /* wgsl */ `
      let wins${k} = (${name}${k} > best) | ${isNan4(`${name}${k}`)};
      arg = select(arg, vec4<u32>(${k}u), wins${k});
      best = select(best, ${name}${k}, wins${k});`).join("");
  const result = relu
    ? /* wgsl */ `
      let result = ${relu4("best")};
      arg = select(vec4<u32>(4u), arg, (result > vec4<f32>(0.0)) | ${isNan4("result")});`
    : /* wgsl */ `
      let result = best;`;
  return /* wgsl */ `
      var best = ${name}0;
      var arg = vec4<u32>(0u);${corners}${result}`;
}

/** WGSL vec4<u32>: the 4 argmaxes of `code` (a u32 expression holding a `PACKED_ARGMAX`). */
function unpackedArgmax(code: string): string {
  return `(vec4<u32>(${code}) >> vec4<u32>(0u, 3u, 6u, 9u)) & vec4<u32>(7u)`;
}

/** WGSL expression: the quad's argmaxes `arg` (0..4 each) packed in base 8 into one f32. */
export const PACKED_ARGMAX = "f32(dot(arg, vec4<u32>(1u, 8u, 64u, 512u)))";

/**
 * WGSL: `g`, the quad's pooled gradient (the vec4 expression `grad`), and `arg`, its argmaxes
 * unpacked from `packed` (an f32 expression holding a `PACKED_ARGMAX`).
 */
export function quadGradient(grad: string, packed: string): string {
  return /* wgsl */ `
      let code = u32(${packed});
      let arg = ${unpackedArgmax("code")};
      let g = ${grad};`;
}

/**
 * WGSL: the gradient of the quad's 4 input texels from `g` and `arg` (see `quadGradient`), each
 * value the gradient of the window that chose it, else 0; then, for each texel,
 * `store(texel, dy)`: a statement given the texel's WGSL index and its gradient's name.
 */
export function spreadGradient(down: string, store: (texel: string, dy: string) => string): string {
  const dy = ["dyA0", "dyA1", "dyB0", "dyB1"];
  const stores = quadTexels(down).map((texel, k) => `\n      ${store(texel, dy[k])}`).join("");
  return /* wgsl */ `
      let zero = vec4<f32>(0.0);
      let left = vec4<f32>(g.xx, g.yy);
      let right = vec4<f32>(g.zz, g.ww);
      let argLeft = vec4<u32>(arg.xx, arg.yy);
      let argRight = vec4<u32>(arg.zz, arg.ww);
      let upper = vec4<u32>(0u, 1u, 0u, 1u);
      let lower = vec4<u32>(2u, 3u, 2u, 3u);
      let dyA0 = select(zero, left, argLeft == upper);
      let dyA1 = select(zero, right, argRight == upper);
      let dyB0 = select(zero, left, argLeft == lower);
      let dyB1 = select(zero, right, argRight == lower);${stores}`;
}

/** Where `expandedGradientRow` reads a row and what it does with its values. */
export interface ExpandedRow {
  /** The input binding holding the pooled gradient (read with `<grad>Vec4`). */
  grad: string;
  /** The input binding holding the packed argmaxes (read with `<indices>At`). */
  indices: string;
  /** WGSL u32: the pooled vector of the row's first quad (the others follow it). */
  first: string;
  /** WGSL bool: whether the row is the lower one of its windows. */
  lower: string;
  /** Quads in the row (its width / 8). */
  quads: number;
  /** A WGSL statement putting the row's value `x` (a WGSL f32 expression) where it belongs. */
  assign: (x: number, value: string) => string;
  /** A prefix for the names the WGSL declares. */
  prefix: string;
}

/**
 * WGSL: one row of the input gradient of relu(maxPool2d(·, 2)) by quads, expanded from the
 * pooled gradient and the packed argmaxes, for kernels that read the expanded gradient without
 * it being written: value x of the row is the pooled gradient of its window where the window's
 * argmax is x, else 0 (as `spreadGradient` writes it).
 */
export function expandedGradientRow(row: ExpandedRow): string {
  const { grad, indices, first, lower, quads, assign, prefix } = row;
  const lines = [`let ${prefix}Upper = select(0u, 2u, ${lower});`];
  for (let q = 0; q < quads; q++) {
    const [g, arg] = [`${prefix}G${q}`, `${prefix}Arg${q}`];
    lines.push(
      `let ${g} = ${grad}Vec4(${first} + ${q}u);`,
      `let ${arg} = ${unpackedArgmax(`u32(${indices}At(${first} + ${q}u))`)};`,
      `let ${prefix}L${q} = select(vec4<f32>(0.0), ${g}, ${arg} == vec4<u32>(${prefix}Upper));`,
      `let ${prefix}R${q} = select(vec4<f32>(0.0), ${g}, ${arg} == vec4<u32>(${prefix}Upper + 1u));`,
    );
    for (let p = 0; p < 4; p++) {
      const c = "xyzw"[p];
      lines.push(assign(8 * q + 2 * p, `${prefix}L${q}.${c}`));
      lines.push(assign(8 * q + 2 * p + 1, `${prefix}R${q}.${c}`));
    }
  }
  return lines.join("\n");
}
