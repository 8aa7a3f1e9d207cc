/**
 * Compiled WGSL compute kernels, cached by source text.
 *
 * Every kernel has one entry point `main` and one bind group (group 0). Its storage buffers are
 * bindings 0..n-1, in the order of `bindings`; a kernel with `params` also declares
 * `@group(0) @binding(n) var<uniform> params: Params;`, which is bound to a slot of the shared
 * parameter ring (see `stream.ts`) with a dynamic offset, so that per-call scalars such as a
 * seed or a learning rate need no new pipeline and no new bind group.
 *
 * @module
 */

import { gpu } from "./device.ts";

/**
 * How a kernel uses each buffer binding: `read` / `read_write` storage, or `uniform` (read-only,
 * at most 64 KiB, declared as `var<uniform> name: array<vec4<f32>, n>`; on llvmpipe uniform loads
 * with a workgroup-uniform address are the cheapest loads there are), or `texture`: a tensor
 * copied into an rgba32float texture (see `texture.ts`) and read with `textureLoad`, which
 * llvmpipe vectorises where storage-buffer loads go lane by lane.
 */
export type Access = "read" | "read_write" | "uniform" | "texture";

/** What is needed to build a kernel. */
export interface KernelSource {
  /** A short name for error messages, e.g. `matmul_nt_128x784x256`. */
  name: string;
  /** The WGSL source, with entry point `main`. */
  code: string;
  /** The buffer bindings, in binding order. */
  bindings: readonly Access[];
  /** Whether the kernel reads a `params` uniform at binding `bindings.length`. */
  params?: boolean;
}

/** A compiled kernel: pipeline plus the layout its bind groups are made with. */
export interface Kernel {
  /** Unique number, part of bind-group cache keys. */
  readonly id: number;
  /** The kernel's name. */
  readonly name: string;
  /** The compute pipeline. */
  readonly pipeline: GPUComputePipeline;
  /** The layout of bind group 0. */
  readonly layout: GPUBindGroupLayout;
  /** How each buffer binding is used, in binding order. */
  readonly bindings: readonly Access[];
  /** Whether a params slot is bound after the storage buffers. */
  readonly hasParams: boolean;
}

/** Bytes of one params slot; also the dynamic-offset alignment every adapter accepts. */
export const PARAMS_SLOT_BYTES = 256;

const kernels = new Map<string, Kernel>();
let nextKernelId = 1;
let firstCompileError: Error | null = null;

/** Returns the kernel for `source`, compiling it on first use. */
export function kernel(source: KernelSource): Kernel {
  const cached = kernels.get(source.code);
  if (cached) return cached;
  const { device } = gpu();
  const entries: GPUBindGroupLayoutEntry[] = source.bindings.map((access, binding) =>
    access === "texture"
      ? {
        binding,
        visibility: GPUShaderStage.COMPUTE,
        texture: { sampleType: "unfilterable-float", viewDimension: "2d" },
      }
      : {
        binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: {
          type: access === "read"
            ? "read-only-storage"
            : access === "uniform"
            ? "uniform"
            : "storage",
        },
      }
  );
  if (source.params) {
    entries.push({
      binding: source.bindings.length,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: "uniform", hasDynamicOffset: true, minBindingSize: 0 },
    });
  }
  device.pushErrorScope("validation");
  const layout = device.createBindGroupLayout({ entries });
  const module = device.createShaderModule({ code: source.code, label: source.name });
  const pipeline = device.createComputePipeline({
    label: source.name,
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: "main" },
  });
  device.popErrorScope().then((error) => {
    if (!error) return;
    const numbered = source.code.split("\n").map((line, i) => `${i + 1}: ${line}`).join("\n");
    firstCompileError ??= new Error(
      `WGSL kernel "${source.name}" failed to compile: ${error.message}\n${numbered}`,
    );
    console.error(firstCompileError.message);
  });
  const compiled: Kernel = {
    id: nextKernelId++,
    name: source.name,
    pipeline,
    layout,
    bindings: source.bindings,
    hasParams: source.params ?? false,
  };
  kernels.set(source.code, compiled);
  return compiled;
}

/** Forgets every compiled kernel (their pipelines belong to a device being destroyed). */
export function clearKernels(): void {
  kernels.clear();
  firstCompileError = null;
}

/** The first kernel compile error seen so far, if any (checked at every GPU sync). */
export function takeCompileError(): Error | null {
  const error = firstCompileError;
  firstCompileError = null;
  return error;
}

/**
 * Formats a finite number as a WGSL f32 literal. NaN and ±Infinity have none (Tint refuses an
 * infinite constant, and clamping to ±3.4e38 would change results): a kernel that may meet them
 * takes the value at run time, through its params or `runtimeF32`.
 */
export function f32(value: number): string {
  if (!Number.isFinite(value)) {
    throw new Error(
      `f32 literal: ${value} has no WGSL literal; pass it at run time (params or runtimeF32)`,
    );
  }
  const text = String(value);
  return /[.eE]/.test(text) ? text : `${text}.0`;
}

/**
 * A WGSL expression for any f32, ±Infinity and NaN included, that is not a constant expression
 * (a call to a user function never is), so no compiler refuses it. Only inside function bodies.
 */
export function runtimeF32(value: number): string {
  const bits = new Uint32Array(new Float32Array([value]).buffer)[0];
  return `bitcast<f32>(runtimeBits(${u32(bits)}))`;
}

/** The helper `runtimeF32` calls: a prelude that uses it must include this once. */
export const RUNTIME_BITS_WGSL = "fn runtimeBits(bits: u32) -> u32 { return bits; }";

/** Formats a non-negative integer as a WGSL u32 literal. */
export function u32(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new Error(`u32 literal: ${value} is not an integer in [0, 2^32)`);
  }
  return `${value}u`;
}

/** Workgroup counts for `groups` workgroups, folded into 2-D when over the per-dimension limit. */
export function grid(groups: number): [number, number] {
  const maxPerDim = gpu().limits.maxComputeWorkgroupsPerDimension;
  if (groups <= maxPerDim) return [Math.max(1, groups), 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y];
}

/**
 * WGSL expression for the linear workgroup index of a dispatch made with `grid(groups)`:
 * use `@builtin(workgroup_id) wid: vec3<u32>` in the kernel.
 */
export function workgroupIndex(groups: number): string {
  const [x, y] = grid(groups);
  return y === 1 ? "wid.x" : `(wid.x + wid.y * ${u32(x)})`;
}
