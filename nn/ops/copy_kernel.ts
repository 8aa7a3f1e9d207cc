/**
 * The strided copy kernel behind the copying layout ops (`layout.ts`): transpose, permute,
 * expand, narrow, split, pad, cat and stack all write a contiguous output whose every element is
 * an element of a source (or the fill value), found from the output coordinates through strides
 * baked into the WGSL as constants:
 *
 *     source index = offset + Σ_d c_d · strides[d]      (c: the output coordinates)
 *
 * A stride of 0 repeats a source along a dimension (expand), a permuted stride order transposes,
 * an offset starts a window (narrow), and a dimension with `bounds` [lo, size] reads the source at
 * c_d - lo only where that lies in [0, size), the fill value elsewhere (pad). Several sources
 * follow one another along `selectDim` (cat): source k covers the output from `start` on.
 *
 * Each invocation writes 4 consecutive output elements with one store (a `vec4` of f32 or i32,
 * or one `u32` word of four u8), the last store running into the buffer's padding (pooled buffers
 * are whole 16-byte multiples). When the output's last dimension is a multiple of 4 the four
 * share every other coordinate, and a source read with stride 1 along it is one `vec4` load. A
 * pure permutation whose output moves the source's last (contiguous) dimension elsewhere (a
 * transpose) takes a tiled variant: each invocation loads a 4x4 block as 4 `vec4`s of source
 * rows and stores it as 4 `vec4`s of output rows. f32 sources are read through textures (software
 * policy) with `xAt`/`xVec4`; i32 and u8 sources as storage words.
 *
 * @module
 */

import { u32 } from "../gpu/kernel.ts";
import { type BindingSpec, type KernelSpec, runKernel } from "../gpu/program.ts";
import { gpu } from "../gpu/device.ts";
import { type DType, Tensor } from "../tensor.ts";

/** One source of a copy, described along the output's dimensions. */
export interface CopySource {
  /** Element stride in the source for each output dimension (0: repeated along it). */
  strides: readonly number[];
  /** Source index of the output's coordinates 0 (may be negative where padding comes first). */
  offset: number;
  /**
   * For each output dimension, `[lo, size]` when the source coordinate c - lo may fall outside
   * [0, size) (there the output is the fill value), else null.
   */
  bounds: readonly (readonly [number, number] | null)[];
  /** The first output coordinate along `selectDim` that this source covers (0 for the first). */
  start: number;
}

/** What one copy kernel is built for. */
export interface CopyOptions {
  /** Element type of the sources and the output. */
  dtype: DType;
  /** The output's shape. */
  out: readonly number[];
  /** The sources, in order along `selectDim`; at most `maxCopySources()`. */
  sources: readonly CopySource[];
  /** The output dimension along which sources follow one another (when there are several). */
  selectDim: number;
}

interface CopyPlan {
  workgroupSize: number;
  groups: number;
  /** The tiled (transpose) variant: the output dimension the source's last one went to. */
  tileDim: number | null;
}

const ELEMENTS_PER_INVOCATION = 4;
const TILE = 4;

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The row-major (contiguous) strides of `shape`, in elements. */
export function rowMajorStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= shape[d];
  }
  return strides;
}

/** A signed offset as a u32 literal that wraps to it in (run-time) u32 arithmetic. */
function wrapped(value: number): string {
  return u32(((value % 2 ** 32) + 2 ** 32) % 2 ** 32);
}

/** The most sources one copy dispatch binds (cat splits longer lists). */
export function maxCopySources(): number {
  const limits = gpu().limits;
  return Math.max(
    1,
    Math.min(
      8,
      limits.maxStorageBuffersPerShaderStage - 1,
      limits.maxSampledTexturesPerShaderStage,
    ),
  );
}

/** The output dimension a tiled copy moves the source's last dimension to, or null. */
function tileDimension({ dtype, out, sources }: CopyOptions): number | null {
  if (dtype === "u8" || sources.length !== 1 || out.length < 2) return null;
  const [{ strides, offset, bounds }] = sources;
  const last = out.length - 1;
  if (bounds.some((b) => b !== null) || offset % 4 !== 0 || out[last] % TILE !== 0) return null;
  const p = strides.findIndex((stride, d) => stride === 1 && out[d] > 1);
  if (p < 0 || p === last || out[p] % TILE !== 0) return null;
  const aligned = strides.every((stride, d) => d === p || out[d] === 1 || stride % 4 === 0);
  return aligned ? p : null;
}

/**
 * `options` with the same meaning in fewer dimensions: size-1 dimensions dropped (unless
 * bounds-checked or the select dimension) and neighbours merged where every source reads them as
 * one (no bounds, strides nesting). Fewer dimensions: less index arithmetic, fewer pipelines.
 */
export function simplifyCopy(options: CopyOptions): CopyOptions {
  const { out, sources } = options;
  const multi = sources.length > 1;
  const keep = (d: number) =>
    out[d] !== 1 || (multi && d === options.selectDim) || sources.some((s) => s.bounds[d]);
  type Dim = { size: number; strides: number[]; bounds: (readonly [number, number] | null)[] };
  const dims: Dim[] = [];
  let selectDim = -1;
  for (let d = 0; d < out.length; d++) {
    if (!keep(d)) continue;
    const dim: Dim = {
      size: out[d],
      strides: sources.map((s) => s.strides[d]),
      bounds: sources.map((s) => s.bounds[d]),
    };
    const previous = dims.at(-1);
    const mergeable = previous &&
      !(multi && (d === options.selectDim || dims.length - 1 === selectDim)) &&
      previous.bounds.every((b) => b === null) && dim.bounds.every((b) => b === null) &&
      previous.strides.every((stride, k) => stride === dim.strides[k] * dim.size);
    if (mergeable) {
      previous.size *= dim.size;
      previous.strides.splice(0, Infinity, ...dim.strides);
      continue;
    }
    if (multi && d === options.selectDim) selectDim = dims.length;
    dims.push(dim);
  }
  return {
    dtype: options.dtype,
    out: dims.map((dim) => dim.size),
    sources: sources.map((source, k) => ({
      strides: dims.map((dim) => dim.strides[k]),
      offset: source.offset,
      bounds: dims.map((dim) => dim.bounds[k]),
      start: source.start,
    })),
    selectDim: multi ? selectDim : 0,
  };
}

/** WGSL type of one output element, and of a store of four. */
function elementType(dtype: DType): string {
  return dtype === "f32" ? "f32" : "u32";
}

/** WGSL reading element `index` of source k. */
function readElement(dtype: DType, k: number, index: string): string {
  if (dtype === "u8") return `((src${k}[(${index}) >> 2u] >> (((${index}) & 3u) * 8u)) & 255u)`;
  return `src${k}At(${index})`;
}

/** The fill value, from the params' bits. */
function fillValue(dtype: DType): string {
  if (dtype === "f32") return "bitcast<f32>(params.fill)";
  return dtype === "u8" ? "(params.fill & 255u)" : "params.fill";
}

/** WGSL of the source index of source k at coordinates `c`, and the validity test. */
function sourceIndex(source: CopySource, c: readonly string[]): { index: string; valid: string } {
  const terms = [wrapped(source.offset)];
  const tests: string[] = [];
  source.strides.forEach((stride, d) => {
    if (stride !== 0 && c[d] !== "0u") terms.push(`${c[d]} * ${u32(stride)}`);
    const bounds = source.bounds[d];
    if (bounds) tests.push(`(${c[d]} + ${wrapped(-bounds[0])}) < ${u32(bounds[1])}`);
  });
  return { index: terms.join(" + "), valid: tests.join(" && ") };
}

/**
 * WGSL statements setting `target` to the element at coordinates `c` (of the right source, or
 * the fill value).
 */
function elementAt(options: CopyOptions, c: readonly string[], target: string): string {
  const { dtype, sources, selectDim } = options;
  const one = (k: number) => {
    const { index, valid } = sourceIndex(sources[k], c);
    if (!valid) return `${target} = ${readElement(dtype, k, index)};`;
    return `{ let ok = ${valid}; ` +
      `${target} = select(${fillValue(dtype)}, ${
        readElement(dtype, k, `select(0u, ${index}, ok)`)
      }, ok); }`;
  };
  let code = one(sources.length - 1);
  for (let k = sources.length - 2; k >= 0; k--) {
    code = `if (${c[selectDim]} < ${u32(sources[k + 1].start)}) { ${one(k)} } else { ${code} }`;
  }
  return code;
}

/** WGSL statements computing the coordinates (`let c<d>`) of linear output index `linear`. */
function decode(out: readonly number[], linear: string): string[] {
  const lines = [`var rest = ${linear};`];
  for (let d = out.length - 1; d >= 0; d--) {
    if (out[d] === 1) continue;
    lines.push(
      d === 0
        ? `let c${d} = rest;`
        : `let c${d} = rest % ${u32(out[d])}; rest = rest / ${u32(out[d])};`,
    );
  }
  return lines;
}

function coordinates(out: readonly number[]): string[] {
  return out.map((size, d) => size === 1 ? "0u" : `c${d}`);
}

/** The four values v0..v3 as one store into `out[j]`. */
function store(dtype: DType): string {
  if (dtype === "u8") return "out[j] = v0 | (v1 << 8u) | (v2 << 16u) | (v3 << 24u);";
  const type = elementType(dtype);
  return `out[j] = vec4<${type}>(v0, v1, v2, v3);`;
}

/** Body of the general variant: four consecutive output elements per invocation. */
function elementsBody(options: CopyOptions, workgroupSize: number): string {
  const { dtype, out, sources, selectDim } = options;
  const size = sizeOf(out);
  const stores = Math.ceil(size / ELEMENTS_PER_INVOCATION);
  const type = elementType(dtype);
  const rank = out.length;
  const last = rank - 1;
  const lines: string[] = [];
  const declare = `var v0: ${type}; var v1: ${type}; var v2: ${type}; var v3: ${type};`;
  if (rank > 0 && out[last] % ELEMENTS_PER_INVOCATION === 0) {
    // The four share every coordinate but the last, which runs c_last .. c_last + 3.
    lines.push(...decode(out, `j * 4u`));
    const c = coordinates(out);
    const vec4Source = (source: CopySource) =>
      dtype !== "u8" && source.strides[last] === 1 && !source.bounds[last] &&
      ((source.offset % 4) + 4) % 4 === 0 &&
      source.strides.every((stride, d) => d === last || out[d] === 1 || stride % 4 === 0);
    const shared = sources.length === 1 || selectDim !== last ||
      sources.every((source) => source.start % 4 === 0);
    if (shared && sources.every(vec4Source)) {
      const one = (k: number) => {
        // Bounds on other dimensions hold for all four or for none.
        const { index, valid } = sourceIndex(sources[k], c);
        if (!valid) return `out[j] = src${k}Vec4((${index}) >> 2u);`;
        const type = elementType(dtype);
        return `let ok = ${valid}; out[j] = select(vec4<${type}>(${fillValue(dtype)}), ` +
          `src${k}Vec4(select(0u, ${index}, ok) >> 2u), ok);`;
      };
      let code = one(sources.length - 1);
      for (let k = sources.length - 2; k >= 0; k--) {
        code = `if (${c[selectDim]} < ${u32(sources[k + 1].start)}) { ${one(k)} } else { ${code} }`;
      }
      lines.push(code);
    } else {
      lines.push(declare);
      for (let e = 0; e < ELEMENTS_PER_INVOCATION; e++) {
        const ce = [...c];
        ce[last] = e === 0 ? c[last] : `(${c[last]} + ${u32(e)})`;
        if (out[last] === 1) ce[last] = "0u";
        lines.push(elementAt(options, ce, `v${e}`));
      }
      lines.push(store(dtype));
    }
  } else {
    lines.push(declare);
    for (let e = 0; e < ELEMENTS_PER_INVOCATION; e++) {
      lines.push(
        `{`,
        ...decode(out, `min(j * 4u + ${u32(e)}, ${u32(Math.max(size - 1, 0))})`),
        elementAt(options, coordinates(out), `v${e}`),
        `}`,
      );
    }
    lines.push(store(dtype));
  }
  return /* wgsl */ `
  let j = group * ${u32(workgroupSize)} + lid;
  if (j < ${u32(stores)}) {
    ${lines.join("\n    ")}
  }`;
}

/** Body of the tiled variant: a 4x4 block per invocation (see the module's comment). */
function tileBody(options: CopyOptions, workgroupSize: number, p: number): string {
  const { out, sources: [source] } = options;
  const last = out.length - 1;
  const blocks = out.map((size, d) => d === p || d === last ? size / TILE : size);
  const outStrides = rowMajorStrides(out);
  // Consecutive invocations take consecutive blocks along p: they read neighbouring texels of
  // the same source rows.
  const order = [...blocks.keys()].filter((d) => d !== p).concat(p);
  const lines = [`var rest = b;`];
  for (let k = order.length - 1; k >= 0; k--) {
    const d = order[k];
    if (blocks[d] === 1) continue;
    lines.push(
      k === 0
        ? `let c${d} = rest;`
        : `let c${d} = rest % ${u32(blocks[d])}; rest = rest / ${u32(blocks[d])};`,
    );
  }
  const c = coordinates(blocks).map((name, d) =>
    d === p || d === last ? `(${name} * ${u32(TILE)})` : name
  );
  const { index } = sourceIndex(source, c);
  const outIndex = c.map((name, d) => name === "0u" ? "" : `${name} * ${u32(outStrides[d])}`)
    .filter((term) => term !== "").join(" + ") || "0u";
  const lane = ["x", "y", "z", "w"];
  for (let r = 0; r < TILE; r++) {
    lines.push(`let r${r} = src0Vec4((s + ${u32(r * source.strides[last])}) >> 2u);`);
  }
  for (let a = 0; a < TILE; a++) {
    const row = [0, 1, 2, 3].map((r) => `r${r}.${lane[a]}`).join(", ");
    lines.push(
      `out[(o + ${u32(a * outStrides[p])}) >> 2u] = vec4<${elementType(options.dtype)}>(${row});`,
    );
  }
  return /* wgsl */ `
  let b = group * ${u32(workgroupSize)} + lid;
  if (b < ${u32(sizeOf(out) / TILE ** 2)}) {
    ${lines[0]}
    ${lines.slice(1, lines.length - 2 * TILE).join("\n    ")}
    let s = ${index};
    let o = ${outIndex};
    ${lines.slice(lines.length - 2 * TILE).join("\n    ")}
  }`;
}

function key({ dtype, out, sources, selectDim }: CopyOptions): string {
  const shape = out.join("x") || "0d";
  const parts = sources.map((s) =>
    `${s.strides.join(",")}@${s.offset}` +
    (s.bounds.some((b) => b) ? `b${s.bounds.map((b) => b ? b.join(":") : "").join(",")}` : "") +
    (s.start ? `s${s.start}` : "")
  );
  return `${dtype}_${shape}_${selectDim}_${parts.join("_")}`;
}

function bindings({ dtype, sources }: CopyOptions): BindingSpec[] {
  return [
    ...sources.map((_, k): BindingSpec =>
      dtype === "f32"
        ? { name: `src${k}`, role: "input", readOnce: true }
        : { name: `src${k}`, role: "read", type: dtype === "i32" ? "vec4<u32>" : "u32" }
    ),
    { name: "out", role: "write", type: dtype === "u8" ? "u32" : `vec4<${elementType(dtype)}>` },
  ];
}

function plan(options: CopyOptions, policy: { elementwiseWorkgroup: number }): CopyPlan {
  const tileDim = tileDimension(options);
  const units = tileDim === null
    ? Math.ceil(sizeOf(options.out) / ELEMENTS_PER_INVOCATION)
    : sizeOf(options.out) / TILE ** 2;
  const workgroupSize = policy.elementwiseWorkgroup;
  return { workgroupSize, groups: Math.ceil(units / workgroupSize), tileDim };
}

/** Readers of i32 sources (f32 ones get theirs from the kernel layer). */
function prelude({ dtype, sources }: CopyOptions): string {
  if (dtype !== "i32") return "";
  return sources.map((_, k) => /* wgsl */ `
fn src${k}At(i: u32) -> u32 { return src${k}[i >> 2u][i & 3u]; }
fn src${k}Vec4(j: u32) -> vec4<u32> { return src${k}[j]; }`).join("");
}

function body(options: CopyOptions, { plan }: { plan: CopyPlan }): string {
  return plan.tileDim === null
    ? elementsBody(options, plan.workgroupSize)
    : tileBody(options, plan.workgroupSize, plan.tileDim);
}

/** The copy kernel without a fill value (no source is bounds-checked). */
const COPY: KernelSpec<CopyOptions, CopyPlan> = {
  name: "copy",
  key,
  bindings,
  plan,
  prelude,
  body,
};

/** The copy kernel with a fill value (padding), as bits in `params`. */
const COPY_FILL: KernelSpec<CopyOptions, CopyPlan> = {
  ...COPY,
  name: "copy_fill",
  params: "fill: u32",
};

/** The bits of `value` as an element of `dtype`, for the fill parameter. */
function fillBits(value: number, dtype: DType): number {
  if (dtype === "f32") return new Uint32Array(Float32Array.of(value).buffer)[0];
  return value >>> 0;
}

/**
 * Runs one strided copy of `sources` (tensors of `options.dtype`, matching `options.sources`)
 * into a new tensor of shape `options.out`; `fill` is the value where bounds checks fail.
 */
export function runCopy(
  options: CopyOptions,
  tensors: readonly Tensor[],
  fill = 0,
): Tensor {
  const out = Tensor.empty(options.out, options.dtype);
  if (out.size === 0) return out;
  const simple = simplifyCopy(options);
  const resources = Object.fromEntries(tensors.map((tensor, k) => [`src${k}`, tensor]));
  const bounded = simple.sources.some((source) => source.bounds.some((b) => b !== null));
  if (bounded) {
    runKernel(COPY_FILL, simple, { ...resources, out }, {
      params: Uint32Array.of(fillBits(fill, options.dtype)),
    });
  } else {
    runKernel(COPY, simple, { ...resources, out });
  }
  return out;
}
