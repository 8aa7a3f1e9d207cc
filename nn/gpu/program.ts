/**
 * The kernel layer: a kernel is declared once, as a `KernelSpec` (its bindings by role, a plan
 * of workgroups, its WGSL body), and run with `runKernel(spec, options, resources)`. The layer
 * owns everything else:
 *
 * - **binding declarations**, numbered in order;
 * - **how every f32 input is read**: the body reads an input `x` only through `xAt(i)` (element
 *   i) and `xVec4(j)` (elements 4j..4j+3), which the layer defines for a uniform array (llvmpipe,
 *   tensors up to `uniformInputBytes`), a texture mirror (software policy, tensor small enough for
 *   a texture) or a storage array;
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
import {
  dispatch,
  params as paramsSlot,
  type ParamsSlot,
  type Resource,
  setHeldWork,
} from "./stream.ts";
import {
  type BindingHomes,
  declaredBindings,
  fusedGroups,
  fusedSource,
  type KernelPart,
  sequenceSource,
} from "./fuse.ts";
import { tensorTexture, textureReaders, textureRows } from "./texture.ts";
import type { Tensor } from "../tensor.ts";
import { type KernelPolicy, kernelPolicy } from "./policy.ts";

/**
 * How a kernel uses a binding:
 * - `input`: an f32 tensor read with `<name>At(i)` and `<name>Vec4(j)`; the layer binds it as a
 *   uniform array, a texture mirror or a storage array.
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
  /**
   * For inputs: the kernel may read it as a uniform array, where the policy allows one that
   * size (`KernelPolicy.uniformInputBytes`). Opt-in per kernel: Mesa 22.3 compiled a strided
   * softmax whose loop reads a uniform array for minutes.
   */
  uniform?: boolean;
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
  /**
   * Whether a single-workgroup call may share one workgroup with the single-workgroup calls of
   * such kernels encoded just before and after it, run one after another (a classifier's head and
   * its loss: see `runKernel`). Kernels with params never do.
   */
  chain?(options: Options): boolean;
}

/** What a binding is given: a tensor, or a raw buffer for `read`/`write`/`uniform` bindings. */
export type BindingResource = Tensor | GPUBuffer;

interface CompiledKernel {
  kernel: Kernel;
  workgroups: [number, number, number];
  /** Its WGSL pieces, for a fused dispatch (kernels without params only). */
  part: KernelPart | null;
  /** How it uses each binding. */
  access: readonly Access[];
}

const compiled = new Map<string, CompiledKernel>();
let compiledDevice: GPUDevice | null = null;

/**
 * How a kernel reads an input: from its buffer as a uniform array of `vec4s` vectors, through its
 * texture mirror, or from its buffer as a storage array.
 */
type InputMode = { uniform: number } | "texture" | "storage";

/** An input mode in the cache key (`-` for bindings that are not inputs). */
function modeKey(mode: InputMode | null): string {
  return mode === null ? "-" : typeof mode === "object" ? `u${mode.uniform}` : mode[0];
}

/**
 * How the input `tensor` is read under `policy`. `uniformsFree` is how many more uniform
 * bindings the kernel may have; `written` holds the buffers the call writes (a buffer cannot be
 * a uniform and writable storage in one dispatch).
 */
function inputMode(
  tensor: Tensor,
  binding: BindingSpec,
  policy: KernelPolicy,
  uniformsFree: number,
  written: ReadonlySet<GPUBuffer>,
): InputMode {
  if (tensor.dtype !== "f32") return "storage";
  const vec4s = Math.max(1, Math.ceil(tensor.size / 4));
  const buffer = tensor.buffer;
  if (
    binding.uniform && uniformsFree > 0 && vec4s * 16 <= policy.uniformInputBytes &&
    vec4s * 16 <= Math.min(buffer.size, gpu().limits.maxUniformBufferBindingSize) &&
    (buffer.usage & GPUBufferUsage.UNIFORM) !== 0 && !written.has(buffer)
  ) {
    return { uniform: vec4s };
  }
  if (!policy.textureInputs) return "storage";
  if (binding.readOnce && tensor.size < policy.textureMinElements) return "storage";
  return textureRows(tensor.size) <= gpu().limits.maxTextureDimension2D ? "texture" : "storage";
}

/** WGSL readers `<name>At(i)` and `<name>Vec4(j)` of an input bound as a storage array. */
function storageReaders(name: string): string {
  return /* wgsl */ `
fn ${name}At(i: u32) -> f32 { return ${name}[i >> 2u][i & 3u]; }
fn ${name}Vec4(j: u32) -> vec4<f32> { return ${name}[j]; }`;
}

function declaration(binding: BindingSpec, index: number, mode: InputMode | null): string {
  const at = `@group(0) @binding(${index})`;
  const { name, type = "f32" } = binding;
  switch (binding.role) {
    case "input":
      return mode === "texture"
        ? `${at} var ${name}: texture_2d<f32>;${textureReaders(name)}`
        : mode === "storage"
        ? `${at} var<storage, read> ${name}: array<vec4<f32>>;${storageReaders(name)}`
        : `${at} var<uniform> ${name}: array<vec4<f32>, ${mode!.uniform}>;${storageReaders(name)}`;
    case "read":
      return `${at} var<storage, read> ${name}: array<${type}>;`;
    case "write":
      return `${at} var<storage, read_write> ${name}: array<${type}>;`;
    case "uniform":
      return `${at} var<uniform> ${name}: ${type};`;
  }
}

function accessOf(binding: BindingSpec, mode: InputMode | null): Access {
  switch (binding.role) {
    case "input":
      return mode === "texture" ? "texture" : mode === "storage" ? "read" : "uniform";
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
  modes: readonly (InputMode | null)[],
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
  const declarations = bindings.map((b, i) => declaration(b, i, modes[i])).join("\n");
  const paramsDeclaration = spec.params
    ? `struct Params { ${spec.params} }\n` +
      `@group(0) @binding(${bindings.length}) var<uniform> params: Params;`
    : "";
  const prelude = spec.prelude?.(options, context) ?? "";
  const mainBody = spec.body(options, context);
  const body = `${count === null ? "" : `  let group = ${workgroupIndex(count)};\n`}${mainBody}`;
  const tuning = policy.tuning ? `, ${policy.tuning}` : "";
  const code = /* wgsl */ `// ${spec.name} ${key} (${policy.name} policy${tuning})
${declarations}
${paramsDeclaration}
${prelude}
@compute @workgroup_size(${plan.workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${body}
}`;
  const access = bindings.map((b, i) => accessOf(b, modes[i]));
  return {
    kernel: kernel({
      name: `${spec.name}_${key}`,
      code,
      bindings: access,
      params: spec.params !== undefined,
    }),
    workgroups,
    access,
    part: spec.params === undefined
      ? {
        name: `${spec.name}_${key}`,
        bindings: bindings.map((b) => b.name),
        declarations,
        prelude,
        // In a fused kernel `group` is the part's own linear index, given to its function.
        body: mainBody,
        workgroupSize: plan.workgroupSize,
        workgroups,
      }
      : null,
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
    chain = [];
    chainPlan = null;
  }
  const key = spec.key(options);
  const bindings = spec.bindings(options);
  const modes = inputModes(spec, bindings, resources, policy);
  const cacheKey = `${spec.name}|${key}|${policy.name}${policy.tuning}|${
    modes.map(modeKey).join("")
  }`;
  let entry = compiled.get(cacheKey);
  if (!entry) {
    entry = compile(spec, options, key, bindings, modes, policy);
    compiled.set(cacheKey, entry);
  }
  if ((spec.params !== undefined) !== (run.params !== undefined)) {
    throw new Error(
      `${spec.name}: ` + (spec.params !== undefined ? "needs params" : "takes no params"),
    );
  }
  const buffers = bindings.map((binding) => {
    const resource = resources[binding.name];
    if (!resource) throw new Error(`${spec.name}: no resource for binding "${binding.name}"`);
    return resource instanceof GPUBuffer ? resource : resource.buffer;
  });
  if (gathered && entry.part) {
    // A kernel reading or writing what a gathered one writes (or writing what it reads) runs
    // after it: the gathered ones go first.
    const call = { entry, cacheKey, bound: [] as Resource[], buffers };
    encodeGathered((other) => dependent(other, call));
    call.bound = bindResources(bindings, resources, modes);
    gathered.push(call);
    return;
  }
  if (
    spec.chain?.(options) && entry.part && entry.workgroups.every((count) => count === 1)
  ) {
    // Binding may copy an input into its texture mirror: held calls that write it go first.
    const mirrored = buffers.filter((_, i) => modes[i] === "texture");
    if (chain.some((held) => writtenBy(held).some((buffer) => mirrored.includes(buffer)))) {
      flushChain();
    }
    const call = { entry, cacheKey, bound: bindResources(bindings, resources, modes), buffers };
    const joined = chain.length > 0 ? sequencePlan([...chain, call]) : null;
    if (chain.length > 0 && !joined) flushChain();
    chain.push(call);
    chainPlan = joined;
    setHeldWork(flushChain);
    return;
  }
  // Held kernels go first: binding may copy an input they write into its texture mirror.
  encodeGathered();
  flushChain();
  const bound = bindResources(bindings, resources, modes);
  const slot = run.params === undefined
    ? undefined
    : ArrayBuffer.isView(run.params)
    ? paramsSlot(run.params)
    : run.params;
  dispatch(entry.kernel, bound, entry.workgroups, slot);
}

/** How each input of a call is read (null for the other bindings), in binding order. */
function inputModes<Options, Plan extends KernelPlan>(
  spec: KernelSpec<Options, Plan>,
  bindings: readonly BindingSpec[],
  resources: Readonly<Record<string, BindingResource>>,
  policy: KernelPolicy,
): (InputMode | null)[] {
  const written = new Set<GPUBuffer>();
  for (const binding of bindings) {
    const resource = resources[binding.name];
    if (binding.role === "write" && resource) {
      written.add(resource instanceof GPUBuffer ? resource : resource.buffer);
    }
  }
  let uniformsFree = gpu().limits.maxUniformBuffersPerShaderStage -
    bindings.filter((b) => b.role === "uniform").length - (spec.params !== undefined ? 1 : 0);
  return bindings.map((binding) => {
    if (binding.role !== "input") return null;
    const resource = resources[binding.name];
    if (!resource || resource instanceof GPUBuffer) {
      throw new Error(`${spec.name}: input "${binding.name}" needs a tensor`);
    }
    const mode = inputMode(resource, binding, policy, uniformsFree, written);
    if (typeof mode === "object") uniformsFree--;
    return mode;
  });
}

/** The resources bound to `bindings`: buffers, and inputs' texture mirrors where chosen. */
function bindResources(
  bindings: readonly BindingSpec[],
  resources: Readonly<Record<string, BindingResource>>,
  modes: readonly (InputMode | null)[],
): Resource[] {
  return bindings.map((binding, i) => {
    const resource = resources[binding.name]!;
    if (resource instanceof GPUBuffer) return resource;
    return modes[i] === "texture" ? tensorTexture(resource) : resource.buffer;
  });
}

/** A `runKernel` call held back by `dispatchTogether`. */
interface GatheredCall {
  entry: CompiledKernel;
  cacheKey: string;
  bound: Resource[];
  /** The buffers behind its bindings (an input's own buffer where a texture mirror is bound). */
  buffers: GPUBuffer[];
}

/** Calls held back by the running `dispatchTogether`, in order; null outside one. */
let gathered: GatheredCall[] | null = null;
/** True while `encodeGathered` dispatches (the stream's call back must not encode the rest). */
let encoding = false;

/** Whether `later` must run after `earlier`: one writes a buffer the other uses. */
function dependent(earlier: GatheredCall, later: GatheredCall): boolean {
  const laterUses = new Set(later.buffers);
  const earlierUses = new Set(earlier.buffers);
  return writtenBy(earlier).some((buffer) => laterUses.has(buffer)) ||
    writtenBy(later).some((buffer) => earlierUses.has(buffer));
}

/** The buffers `call` binds read-write. */
function writtenBy(call: GatheredCall): GPUBuffer[] {
  return call.buffers.filter((_, i) => call.entry.access[i] === "read_write");
}

/**
 * Whether `calls` fit one fused kernel on this device: the same workgroup size, none larger than
 * the policy's `fusedKernelSource`, bindings within the per-stage limits, and workgroup memory in
 * at most one of them.
 */
function fusible(calls: readonly GatheredCall[]): boolean {
  const parts = calls.map((call) => call.entry.part!);
  if (parts.some((part) => part.workgroupSize !== parts[0].workgroupSize)) return false;
  const largest = kernelPolicy().fusedKernelSource;
  if (parts.some((part) => part.prelude.length + part.body.length > largest)) return false;
  const access = calls.flatMap((call) => call.entry.access);
  const count = (kinds: readonly Access[]) => access.filter((a) => kinds.includes(a)).length;
  const limits = gpu().limits;
  const sharedMemory = parts.filter((part) => /var<workgroup>/.test(part.prelude)).length;
  return count(["read", "read_write"]) <= limits.maxStorageBuffersPerShaderStage &&
    count(["texture"]) <= limits.maxSampledTexturesPerShaderStage &&
    count(["uniform"]) <= limits.maxUniformBuffersPerShaderStage &&
    access.length <= (limits.maxBindingsPerBindGroup ?? 640) && sharedMemory <= 1;
}

/**
 * Encodes gathered calls: those `needed` (all by default) with the held calls that must run
 * before them, and the held calls of their workgroup size that may run now (they could share
 * their dispatch); the rest stay held, in order. One fused dispatch when they fit one kernel,
 * else one by one.
 */
function encodeGathered(needed: (call: GatheredCall) => boolean = () => true): void {
  if (!gathered || gathered.length === 0) return;
  const held = gathered;
  const now = held.map(needed);
  if (!now.includes(true)) return;
  // Calls held before one that goes now, and dependent on it, go first.
  for (let j = held.length - 1; j >= 0; j--) {
    if (!now[j]) continue;
    for (let i = 0; i < j; i++) if (!now[i] && dependent(held[i], held[j])) now[i] = true;
  }
  // Calls of the same workgroup size join them, where no call staying held before them
  // depends on them.
  const size = held[now.indexOf(true)].entry.part!.workgroupSize;
  held.forEach((call, j) => {
    if (now[j] || call.entry.part!.workgroupSize !== size) return;
    if (held.some((other, i) => i < j && !now[i] && dependent(other, call))) return;
    now[j] = true;
  });
  const calls = held.filter((_, j) => now[j]);
  gathered = held.filter((_, j) => !now[j]);
  encoding = true;
  try {
    encodeCalls(calls);
  } finally {
    encoding = false;
  }
}

/** Encodes `calls`: one fused dispatch when they fit one kernel, else one by one. */
function encodeCalls(calls: readonly GatheredCall[]): void {
  if (calls.length === 1 || !fusible(calls)) {
    for (const call of calls) dispatch(call.entry.kernel, call.bound, call.entry.workgroups);
    return;
  }
  const cacheKey = calls.map((call) => call.cacheKey).join("+");
  let entry = compiled.get(cacheKey);
  if (!entry) {
    const parts = calls.map((call) => call.entry.part!);
    const [width, height] = grid(fusedGroups(parts));
    entry = {
      kernel: kernel({
        name: `together(${parts.map((part) => part.name).join(", ")})`,
        code: fusedSource(parts, width),
        bindings: calls.flatMap((call) => call.entry.access),
      }),
      workgroups: [width, height, 1],
      access: calls.flatMap((call) => call.entry.access),
      part: null,
    };
    compiled.set(cacheKey, entry);
  }
  dispatch(entry.kernel, calls.flatMap((call) => call.bound), entry.workgroups);
}

/**
 * Runs `fn`, holding back the kernels it runs (`runKernel`, without params) so that independent
 * ones share one dispatch: each call joins the held ones unless it depends on one of them (then
 * those are encoded first), and anything else that touches the stream (a copy, an upload, a
 * submit, a kernel with params) encodes them first. Results are those of running the kernels one
 * by one; on llvmpipe each dispatch saved is ~40-50 µs. Nested calls join the outermost.
 */
export function dispatchTogether<T>(fn: () => T): T {
  if (gathered) return fn();
  flushChain();
  gathered = [];
  setHeldWork(() => encoding || encodeGathered());
  try {
    return fn();
  } finally {
    try {
      encodeGathered();
    } finally {
      gathered = null;
      setHeldWork(null);
    }
  }
}

/**
 * Single-workgroup calls of `chain` kernels held back to run in one workgroup, in order (empty
 * when none): `runKernel` holds such a call while the next one may join it, and anything else that
 * touches the stream encodes them first (`setHeldWork`). On llvmpipe a dispatch costs a training
 * step ~50-130 µs however little it computes.
 */
let chain: GatheredCall[] = [];
/** The plan of the held chain when it has several calls. */
let chainPlan: SequencePlan | null = null;

/** Encodes the held chain: one dispatch, its calls one after another (see `sequencePlan`). */
function flushChain(): void {
  if (chain.length === 0) return;
  const calls = chain, plan = chainPlan;
  chain = [];
  chainPlan = null;
  setHeldWork(null);
  if (!plan) {
    dispatch(calls[0].entry.kernel, calls[0].bound, calls[0].entry.workgroups);
    return;
  }
  const cacheKey = `sequence(${calls.map((call) => call.cacheKey).join(";")})|${plan.key}`;
  let entry = compiled.get(cacheKey);
  if (!entry) {
    const parts = calls.map((call) => call.entry.part!);
    entry = {
      kernel: kernel({
        name: `sequence(${parts.map((part) => part.name).join(", ")})`,
        code: sequenceSource(parts, plan.homes, plan.readWrite),
        bindings: plan.access,
      }),
      workgroups: [1, 1, 1],
      access: plan.access,
      part: null,
    };
    compiled.set(cacheKey, entry);
  }
  dispatch(entry.kernel, plan.bound, entry.workgroups);
}

/** Each compiled part's binding declarations (`declaredBindings`), parsed once. */
const declarationsOf = new WeakMap<KernelPart, ReturnType<typeof declaredBindings>>();

function declaredOf(part: KernelPart): ReturnType<typeof declaredBindings> {
  let declared = declarationsOf.get(part);
  if (!declared) declarationsOf.set(part, declared = declaredBindings(part));
  return declared;
}

/** How a chain's calls share bindings in their one dispatch. */
interface SequencePlan {
  homes: BindingHomes;
  readWrite: boolean[][];
  /** The kept bindings' access and resources, in order. */
  access: Access[];
  bound: Resource[];
  /** Which bindings are homed where (part of the cache key: it changes the code). */
  key: string;
}

/**
 * How `calls` run as one workgroup, or null where they cannot: they must have one workgroup
 * size, bindings within the per-stage limits, workgroup memory in at most one of them, and a
 * buffer that one of them writes bound by the others only as a storage array of the same type
 * (then it is bound once, read-write); a texture mirror or uniform array of a buffer another call
 * writes would not see the write.
 */
function sequencePlan(calls: readonly GatheredCall[]): SequencePlan | null {
  const parts = calls.map((call) => call.entry.part!);
  if (parts.some((part) => part.workgroupSize !== parts[0].workgroupSize)) return null;
  if (parts.filter((part) => /var<workgroup>/.test(part.prelude)).length > 1) return null;
  const written = new Set(calls.flatMap(writtenBy));
  const declared = parts.map(declaredOf);
  const homes: [number, number][][] = [];
  const readWrite: boolean[][] = calls.map((call) => call.entry.access.map(() => false));
  const access: Access[] = [];
  const bound: Resource[] = [];
  /** The first storage binding of each written buffer: [part, binding]. */
  const firstOf = new Map<GPUBuffer, [number, number]>();
  for (const [k, call] of calls.entries()) {
    homes.push([]);
    for (const [j, buffer] of call.buffers.entries()) {
      const mode = call.entry.access[j];
      if (!written.has(buffer)) {
        homes[k].push([k, j]);
        access.push(mode);
        bound.push(call.bound[j]);
        continue;
      }
      if (mode !== "read" && mode !== "read_write") return null;
      const home = firstOf.get(buffer);
      if (!home) {
        firstOf.set(buffer, [k, j]);
        homes[k].push([k, j]);
        access.push("read_write");
        bound.push(call.bound[j]);
        readWrite[k][j] = mode !== "read_write";
        continue;
      }
      if (declared[home[0]][home[1]]?.type !== declared[k][j]?.type) return null;
      homes[k].push(home);
    }
  }
  const count = (kinds: readonly Access[]) => access.filter((a) => kinds.includes(a)).length;
  const limits = gpu().limits;
  if (
    count(["read", "read_write"]) > limits.maxStorageBuffersPerShaderStage ||
    count(["texture"]) > limits.maxSampledTexturesPerShaderStage ||
    count(["uniform"]) > limits.maxUniformBuffersPerShaderStage ||
    access.length > (limits.maxBindingsPerBindGroup ?? 640)
  ) return null;
  const key = homes.map((row, k) =>
    row.map(([h, j], i) => (h === k && j === i ? (readWrite[k][i] ? "w" : ".") : `${h}:${j}`))
      .join(",")
  ).join("/");
  return { homes, readWrite, access, bound, key };
}

/** Number of compiled kernels in the layer's cache (for tests of the cache keys). */
export function compiledKernelCount(): number {
  return compiled.size;
}
