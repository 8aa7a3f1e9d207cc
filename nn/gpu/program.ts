/**
 * The kernel layer: a kernel is declared once, as a `KernelSpec` (its bindings by role, a plan
 * of workgroups, its WGSL body), and run with `runKernel(spec, options, resources)`. The layer
 * owns everything else:
 *
 * - **binding declarations**, numbered in order;
 * - **the texture-or-storage choice** for every f32 input: the body reads an input `x` only
 *   through `xAt(i)` (element i) and `xVec4(j)` (elements 4j..4j+3), which the layer defines for
 *   a texture mirror (software policy, tensor small enough for a texture) or a storage array;
 * - **grid folding**: a plan of `n` workgroups becomes a 2-D grid past the per-dimension limit,
 *   and the body gets their linear index as `group` (a plan's `layers` add a z dimension, read as
 *   `wid.z`);
 * - **the cache**: compiled kernels are keyed by the spec's name, its `key(options)` (built from
 *   shapes and options), the policy and the input modes; the WGSL is generated only on a miss;
 * - **the adapter policy** (`policy.ts`), which `plan` and `source` receive.
 *
 * @module
 */

import { gpu } from "./device.ts";
import { type Access, grid, type Kernel, kernel, workgroupIndex } from "./kernel.ts";
import { dispatch, params as paramsSlot, type ParamsSlot, type Resource } from "./stream.ts";
import { tensorTexture, textureReaders, textureRows } from "./texture.ts";
import type { Tensor } from "../tensor.ts";
import { type KernelPolicy, kernelPolicy } from "./policy.ts";

/**
 * How a kernel uses a binding:
 * - `input`: an f32 tensor read with `<name>At(i)` and `<name>Vec4(j)`; the layer binds it as a
 *   texture mirror or a storage array.
 * - `read` / `write`: a storage array of `type` (default `f32`), read-only or read-write.
 * - `uniform`: a uniform buffer of WGSL type `type` (e.g. `array<vec4<f32>, 64>`).
 */
export type Role = "input" | "read" | "write" | "uniform";

/** One binding of a kernel. */
export interface BindingSpec {
  /** The WGSL name (and the key of its resource in `runKernel`). */
  name: string;
  /** How the kernel uses it. */
  role: Role;
  /** Element type of a storage array (`f32`, `vec4<f32>`, `i32`, `u32`), or a uniform's type. */
  type?: string;
  /**
   * For inputs: the kernel reads each element about once, so a small tensor is cheaper to read
   * from storage than to copy into a texture first (see `KernelPolicy.textureMinElements`).
   */
  readOnce?: boolean;
}

/** How many workgroups of what size a kernel runs. */
export interface KernelPlan {
  /** Invocations per workgroup (1-D). */
  workgroupSize: number;
  /**
   * A workgroup count (folded into a 2-D grid when over the limit; the body reads the linear
   * index as `group`), or an explicit `[x, y]` grid (the body reads `wid.x`, `wid.y`).
   */
  groups: number | readonly [number, number];
  /** Workgroups along z (default 1), on top of `groups`: the body reads `wid.z`. */
  layers?: number;
}

/** What `source` gets besides the options. */
export interface SourceContext<Plan extends KernelPlan = KernelPlan> {
  /** The plan `plan()` returned. */
  plan: Plan;
  /** The policy in force. */
  policy: KernelPolicy;
}

/** A kernel, declared once. `Options` holds everything its code depends on (shapes, flags). */
export interface KernelSpec<Options, Plan extends KernelPlan = KernelPlan> {
  /** Base name, for profiles and errors (`key` is appended). */
  name: string;
  /** A short string that differs whenever the generated code would (shapes and options). */
  key(options: Options): string;
  /** The bindings, in order. */
  bindings(options: Options): readonly BindingSpec[];
  /** Workgroup size and count, for this policy. */
  plan(options: Options, policy: KernelPolicy): Plan;
  /** Fields of the per-call `params` uniform (`"seed: u32, lr: f32"`), when the kernel has one. */
  params?: string;
  /** WGSL placed before `main`: constants and helper functions. */
  prelude?(options: Options, context: SourceContext<Plan>): string;
  /**
   * The body of `main`, which has `wid` (workgroup id), `lid` (local invocation index) and, for
   * a plan with a workgroup count, `group` (the linear workgroup index).
   */
  body(options: Options, context: SourceContext<Plan>): string;
}

/** What a binding is given: a tensor, or a raw buffer for `read`/`write`/`uniform` bindings. */
export type BindingResource = Tensor | GPUBuffer;

interface CompiledKernel {
  kernel: Kernel;
  workgroups: [number, number, number];
}

const compiled = new Map<string, CompiledKernel>();
let compiledDevice: GPUDevice | null = null;

/** Whether the input `tensor` is read through its texture mirror under `policy`. */
function readsAsTexture(tensor: Tensor, binding: BindingSpec, policy: KernelPolicy): boolean {
  if (!policy.textureInputs || tensor.dtype !== "f32") return false;
  if (binding.readOnce && tensor.size < policy.textureMinElements) return false;
  return textureRows(tensor.size) <= gpu().limits.maxTextureDimension2D;
}

/** WGSL readers `<name>At(i)` and `<name>Vec4(j)` of an input bound as a storage array. */
function storageReaders(name: string): string {
  return /* wgsl */ `
fn ${name}At(i: u32) -> f32 { return ${name}[i >> 2u][i & 3u]; }
fn ${name}Vec4(j: u32) -> vec4<f32> { return ${name}[j]; }`;
}

function declaration(binding: BindingSpec, index: number, texture: boolean): string {
  const at = `@group(0) @binding(${index})`;
  const { name, type = "f32" } = binding;
  switch (binding.role) {
    case "input":
      return texture
        ? `${at} var ${name}: texture_2d<f32>;${textureReaders(name)}`
        : `${at} var<storage, read> ${name}: array<vec4<f32>>;${storageReaders(name)}`;
    case "read":
      return `${at} var<storage, read> ${name}: array<${type}>;`;
    case "write":
      return `${at} var<storage, read_write> ${name}: array<${type}>;`;
    case "uniform":
      return `${at} var<uniform> ${name}: ${type};`;
  }
}

function access(binding: BindingSpec, texture: boolean): Access {
  switch (binding.role) {
    case "input":
      return texture ? "texture" : "read";
    case "read":
      return "read";
    case "write":
      return "read_write";
    case "uniform":
      return "uniform";
  }
}

function compile<Options, Plan extends KernelPlan>(
  spec: KernelSpec<Options, Plan>,
  options: Options,
  key: string,
  bindings: readonly BindingSpec[],
  textures: readonly boolean[],
  policy: KernelPolicy,
): CompiledKernel {
  const plan = spec.plan(options, policy);
  const context = { plan, policy };
  const groups = plan.groups;
  const count = typeof groups === "number" ? groups : null;
  const workgroups: [number, number, number] = [
    ...(typeof groups === "number" ? grid(groups) : groups),
    plan.layers ?? 1,
  ] as [number, number, number];
  const limit = gpu().limits.maxComputeWorkgroupsPerDimension;
  if (workgroups.some((count) => count > limit)) {
    throw new Error(
      `${spec.name} ${key}: needs ${workgroups.join(" x ")} workgroups; this adapter allows ` +
        `${limit} per dimension`,
    );
  }
  const declarations = bindings.map((b, i) => declaration(b, i, textures[i])).join("\n");
  const paramsDeclaration = spec.params
    ? `struct Params { ${spec.params} }\n` +
      `@group(0) @binding(${bindings.length}) var<uniform> params: Params;`
    : "";
  const code = /* wgsl */ `// ${spec.name} ${key} (${policy.name} policy${
    policy.tuning ? `, ${policy.tuning}` : ""
  })
${declarations}
${paramsDeclaration}
${spec.prelude?.(options, context) ?? ""}
@compute @workgroup_size(${plan.workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${count === null ? "" : `  let group = ${workgroupIndex(count)};\n`}${spec.body(options, context)}
}`;
  return {
    kernel: kernel({
      name: `${spec.name}_${key}`,
      code,
      bindings: bindings.map((b, i) => access(b, textures[i])),
      params: spec.params !== undefined,
    }),
    workgroups,
  };
}

/**
 * The plan `runKernel` uses for `options` under the current policy, for an op that sizes its
 * buffers by it.
 */
export function planKernel<Options, Plan extends KernelPlan>(
  spec: KernelSpec<Options, Plan>,
  options: Options,
): Plan {
  return spec.plan(options, kernelPolicy());
}

/**
 * A params slot holding `bytes`, for `runKernel` calls that share their per-call scalars (pass
 * it as `params`): one upload for all of them.
 */
export function sharedParams(bytes: ArrayBufferView): ParamsSlot {
  return paramsSlot(bytes);
}

/** Options of one `runKernel` call. */
export interface RunOptions {
  /** The per-call scalars of a kernel with `params`: the bytes of its `Params` struct. */
  params?: ArrayBufferView | ParamsSlot;
}

/**
 * Encodes one dispatch of `spec` for `options`, binding `resources` by binding name. Compiles the
 * kernel on first use of this key, policy and choice of input modes.
 */
export function runKernel<Options, Plan extends KernelPlan>(
  spec: KernelSpec<Options, Plan>,
  options: Options,
  resources: Readonly<Record<string, BindingResource>>,
  run: RunOptions = {},
): void {
  const policy = kernelPolicy();
  const { device } = gpu();
  if (compiledDevice !== device) {
    compiled.clear();
    compiledDevice = device;
  }
  const key = spec.key(options);
  const bindings = spec.bindings(options);
  const textures = bindings.map((binding) => {
    if (binding.role !== "input") return false;
    const resource = resources[binding.name];
    if (!resource || resource instanceof GPUBuffer) {
      throw new Error(`${spec.name}: input "${binding.name}" needs a tensor`);
    }
    return readsAsTexture(resource, binding, policy);
  });
  const cacheKey = `${spec.name}|${key}|${policy.name}${policy.tuning}|${
    textures.map(Number).join("")
  }`;
  let entry = compiled.get(cacheKey);
  if (!entry) {
    entry = compile(spec, options, key, bindings, textures, policy);
    compiled.set(cacheKey, entry);
  }
  const bound: Resource[] = bindings.map((binding, i) => {
    const resource = resources[binding.name];
    if (!resource) throw new Error(`${spec.name}: no resource for binding "${binding.name}"`);
    if (resource instanceof GPUBuffer) return resource;
    return textures[i] ? tensorTexture(resource) : resource.buffer;
  });
  if ((spec.params !== undefined) !== (run.params !== undefined)) {
    throw new Error(
      `${spec.name}: ` + (spec.params !== undefined ? "needs params" : "takes no params"),
    );
  }
  const slot = run.params === undefined
    ? undefined
    : ArrayBuffer.isView(run.params)
    ? paramsSlot(run.params)
    : run.params;
  dispatch(entry.kernel, bound, entry.workgroups, slot);
}

/** Number of compiled kernels in the layer's cache (for tests of the cache keys). */
export function compiledKernelCount(): number {
  return compiled.size;
}
