/**
 * The command stream: every op appends its dispatch to one open compute pass of one command
 * encoder, which is submitted only when something needs it (a readback, an upload into a buffer
 * the pending work still reads, a full parameter ring, or an explicit `flush()`). A training step
 * is therefore one submit, and nothing waits for the GPU unless a value is read back.
 *
 * @module
 */

import { gpu } from "./device.ts";
import { type Kernel, PARAMS_SLOT_BYTES, takeCompileError } from "./kernel.ts";

/** A slot of the params ring, bound as a kernel's `params` uniform. */
export interface ParamsSlot {
  /** Byte offset of the slot inside the ring buffer. */
  readonly offset: number;
}

const RING_SLOTS = 1024;
/** Submit after this many dispatches even if nothing asked, to bound the encoder's size. */
const MAX_DISPATCHES_PER_SUBMIT = 2048;
const BIND_GROUP_CACHE_LIMIT = 8192;

let encoder: GPUCommandEncoder | null = null;
let pass: GPUComputePassEncoder | null = null;
let dispatchesPending = 0;
/** Buffers that commands not yet submitted read or write. */
const pendingBuffers = new Set<GPUBuffer>();

let ring: GPUBuffer | null = null;
let ringDevice: GPUDevice | null = null;
let ringNext = 0;
let ringUsedSinceFlush = 0;

const bufferIds = new WeakMap<GPUBuffer | GPUTexture, number>();
/** How many times each buffer's contents were (or will be, in stream order) rewritten. */
const bufferVersions = new WeakMap<GPUBuffer, number>();
const textureViews = new WeakMap<GPUTexture, GPUTextureView>();
let nextBufferId = 1;
const bindGroups = new Map<string, GPUBindGroup>();

let uncapturedError: Error | null = null;
/** Encodes work a caller holds back (`dispatchTogether`'s kernels), before anything after it. */
let heldWork: (() => void) | null = null;
let watchedDevice: GPUDevice | null = null;

/** Counters for tests and benchmarks. */
export interface StreamStats {
  /** Dispatches encoded since the process started. */
  dispatches: number;
  /** Command buffers submitted. */
  submits: number;
  /** GPU→CPU readbacks (each one waits for the GPU). */
  readbacks: number;
  /** Bind groups created (the rest came from the cache). */
  bindGroupsCreated: number;
  /** Buffer→texture copies encoded (texture mirrors refreshed; each one breaks the pass). */
  textureCopies: number;
  /** Bytes those buffer→texture copies move. */
  textureCopyBytes: number;
  /** Buffer→buffer copies encoded (each one breaks the pass). */
  bufferCopies: number;
  /**
   * Milliseconds spent in `queue.submit()`, which on llvmpipe returns only once the previous
   * submission has run: time the JavaScript thread waited rather than encoded.
   */
  submitMilliseconds: number;
}

const counters: StreamStats = {
  dispatches: 0,
  submits: 0,
  readbacks: 0,
  bindGroupsCreated: 0,
  textureCopies: 0,
  textureCopyBytes: 0,
  bufferCopies: 0,
  submitMilliseconds: 0,
};

/**
 * Registers the function that encodes work held back outside the stream (program.ts's kernels
 * gathered by `dispatchTogether`): every dispatch, copy, upload and submit calls it first, so the
 * held work keeps its place in stream order. `null` unregisters it.
 */
export function setHeldWork(encode: (() => void) | null): void {
  heldWork = encode;
}

/** A copy of the stream's counters, held work encoded first (so that they count it). */
export function streamStats(): StreamStats {
  heldWork?.();
  return { ...counters };
}

function device(): GPUDevice {
  const { device } = gpu();
  if (watchedDevice !== device) {
    watchedDevice = device;
    device.addEventListener("uncapturederror", (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      uncapturedError ??= new Error(`WebGPU error: ${error.message}`);
      console.error(uncapturedError.message);
    });
  }
  return device;
}

/** What a dispatch binds: buffers, and textures for kernels that read tensors as textures. */
export type Resource = GPUBuffer | GPUTexture;

function bufferId(buffer: Resource): number {
  let id = bufferIds.get(buffer);
  if (id === undefined) bufferIds.set(buffer, id = nextBufferId++);
  return id;
}

function openPass(): GPUComputePassEncoder {
  if (pass) return pass;
  encoder ??= device().createCommandEncoder();
  pass = encoder.beginComputePass();
  return pass;
}

function closePass(): GPUCommandEncoder {
  if (pass) {
    pass.end();
    pass = null;
  }
  return encoder ??= device().createCommandEncoder();
}

function ringBuffer(): GPUBuffer {
  const dev = device();
  if (!ring || ringDevice !== dev) {
    ring = dev.createBuffer({
      size: RING_SLOTS * PARAMS_SLOT_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    ringDevice = dev;
    ringNext = 0;
    ringUsedSinceFlush = 0;
  }
  return ring;
}

/**
 * Writes up to 256 bytes of per-call scalars into a fresh slot of the params ring.
 * The values are visible to every dispatch encoded with this slot.
 */
export function params(values: ArrayBufferView): ParamsSlot {
  if (values.byteLength > PARAMS_SLOT_BYTES) {
    throw new Error(
      `params: ${values.byteLength} bytes do not fit a ${PARAMS_SLOT_BYTES}-byte slot`,
    );
  }
  const buffer = ringBuffer();
  if (ringUsedSinceFlush === RING_SLOTS) flush();
  const offset = ringNext * PARAMS_SLOT_BYTES;
  ringNext = (ringNext + 1) % RING_SLOTS;
  ringUsedSinceFlush++;
  device().queue.writeBuffer(
    buffer,
    offset,
    values.buffer as ArrayBuffer,
    values.byteOffset,
    values.byteLength,
  );
  return { offset };
}

function touch(buffer: GPUBuffer): void {
  bufferVersions.set(buffer, (bufferVersions.get(buffer) ?? 0) + 1);
}

/**
 * Records that `buffer` was written outside the stream (the user's own `queue.writeBuffer` or
 * compute pass): bumps its version, so that texture mirrors of it are copied again before the
 * next kernel reads it. Throws when commands not yet submitted use `buffer`: they were encoded
 * before that write but would run after it (call `flush()` before writing).
 */
export function markBufferWritten(buffer: GPUBuffer, who = "markWritten"): void {
  heldWork?.();
  if (pendingBuffers.has(buffer)) {
    throw new Error(
      `${who}: wgtorch commands not yet submitted use this buffer, so they would run after your ` +
        `write although they were issued before it. Call flush() before writing a tensor's ` +
        `buffer with your own WebGPU commands, then ${who}(tensor) after.`,
    );
  }
  touch(buffer);
}

/**
 * A number that changes whenever something encoded later in the stream writes `buffer` (a
 * kernel binding it read-write, a copy into it, an upload): caches of its contents compare it.
 */
export function bufferVersion(buffer: GPUBuffer): number {
  return bufferVersions.get(buffer) ?? 0;
}

function viewOf(texture: GPUTexture): GPUTextureView {
  let view = textureViews.get(texture);
  if (!view) textureViews.set(texture, view = texture.createView());
  return view;
}

function bindGroupFor(kernel: Kernel, buffers: readonly Resource[]): GPUBindGroup {
  let key = String(kernel.id);
  for (const buffer of buffers) key += "," + bufferId(buffer);
  let group = bindGroups.get(key);
  if (group) return group;
  if (bindGroups.size >= BIND_GROUP_CACHE_LIMIT) bindGroups.clear();
  const maxUniformBytes = gpu().limits.maxUniformBufferBindingSize;
  const entries: GPUBindGroupEntry[] = buffers.map((resource, binding) => {
    if (resource instanceof GPUTexture) return { binding, resource: viewOf(resource) };
    const buffer = resource;
    return {
      binding,
      resource: kernel.bindings[binding] === "uniform"
        ? { buffer, size: Math.min(buffer.size, maxUniformBytes) }
        : { buffer },
    };
  });
  if (kernel.hasParams) {
    entries.push({
      binding: buffers.length,
      resource: { buffer: ringBuffer(), offset: 0, size: PARAMS_SLOT_BYTES },
    });
  }
  group = device().createBindGroup({ layout: kernel.layout, entries });
  counters.bindGroupsCreated++;
  bindGroups.set(key, group);
  return group;
}

/**
 * Encodes one dispatch of `kernel` over `workgroups`, binding `buffers` in order (and `slot`
 * as its params when the kernel has them).
 */
export function dispatch(
  kernel: Kernel,
  buffers: readonly Resource[],
  workgroups: readonly number[],
  slot?: ParamsSlot,
): void {
  heldWork?.();
  if (buffers.length !== kernel.bindings.length) {
    throw new Error(
      `dispatch ${kernel.name}: ${buffers.length} buffers given, the kernel binds ` +
        `${kernel.bindings.length}`,
    );
  }
  if (kernel.hasParams !== (slot !== undefined)) {
    throw new Error(
      `dispatch ${kernel.name}: ` + (kernel.hasParams ? "needs a params slot" : "takes no params"),
    );
  }
  const [x, y = 1, z = 1] = workgroups;
  if (![x, y, z].every((count) => Number.isInteger(count) && count >= 0)) {
    throw new Error(
      `dispatch ${kernel.name}: workgroup counts must be integers >= 0, got ` +
        `[${workgroups.join(", ")}] (an op planned its grid from an empty or invalid shape)`,
    );
  }
  // Nothing to compute (an empty tensor): WebGPU would run nothing either.
  if (x === 0 || y === 0 || z === 0) return;
  const group = bindGroupFor(kernel, buffers);
  if (profiler) closePass();
  const computePass = profiler ? beginTimedPass(kernel.name) : openPass();
  computePass.setPipeline(kernel.pipeline);
  if (slot) computePass.setBindGroup(0, group, [slot.offset]);
  else computePass.setBindGroup(0, group);
  computePass.dispatchWorkgroups(x, y, z);
  if (profiler) closePass();
  buffers.forEach((buffer, i) => {
    if (buffer instanceof GPUTexture) return;
    pendingBuffers.add(buffer);
    if (kernel.bindings[i] === "read_write") touch(buffer);
  });
  counters.dispatches++;
  if (++dispatchesPending >= MAX_DISPATCHES_PER_SUBMIT) flush();
}

/** Encodes a buffer-to-buffer copy (between compute passes). */
export function copyBuffer(
  source: GPUBuffer,
  target: GPUBuffer,
  byteLength: number,
  sourceOffset = 0,
  targetOffset = 0,
): void {
  heldWork?.();
  closePass().copyBufferToBuffer(source, sourceOffset, target, targetOffset, byteLength);
  pendingBuffers.add(source);
  pendingBuffers.add(target);
  touch(target);
  counters.bufferCopies++;
  dispatchesPending++;
}

/** Encodes a copy of `bytes` bytes of `source` into rows of `texture` (between compute passes). */
export function copyBufferToTexture(
  source: GPUBuffer,
  texture: GPUTexture,
  layout: { bytesPerRow: number; rows: number; lastRowTexels: number },
): void {
  const commands = closePass();
  const width = texture.width;
  if (layout.rows > 0) {
    commands.copyBufferToTexture(
      { buffer: source, bytesPerRow: layout.bytesPerRow },
      { texture },
      [width, layout.rows],
    );
  }
  if (layout.lastRowTexels > 0) {
    commands.copyBufferToTexture(
      { buffer: source, offset: layout.rows * layout.bytesPerRow, bytesPerRow: layout.bytesPerRow },
      { texture, origin: [0, layout.rows] },
      [layout.lastRowTexels, 1],
    );
  }
  pendingBuffers.add(source);
  counters.textureCopies++;
  counters.textureCopyBytes += layout.rows * layout.bytesPerRow + layout.lastRowTexels * 16;
  dispatchesPending++;
}

/**
 * Uploads `data` into `buffer` at `byteOffset`. If commands not yet submitted use `buffer`,
 * they are submitted first, so that they see the old contents (queue writes run before the
 * next submit). Writing 0 bytes does nothing.
 */
export function writeBuffer(buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
  // Deno (ext/webgpu queue.rs) panics on a 0-byte write: an empty tensor's upload is a no-op.
  if (data.byteLength === 0) return;
  heldWork?.();
  if (pendingBuffers.has(buffer)) flush();
  touch(buffer);
  device().queue.writeBuffer(
    buffer,
    byteOffset,
    data.buffer as ArrayBuffer,
    data.byteOffset,
    data.byteLength,
  );
}

/** Submits everything encoded so far. Does not wait for the GPU. */
export function flush(): void {
  heldWork?.();
  if (!encoder) return;
  if (profiler && profiler.pending.length > 0) resolveTimestamps(profiler);
  const commands = closePass().finish();
  encoder = null;
  const start = performance.now();
  device().queue.submit([commands]);
  counters.submitMilliseconds += performance.now() - start;
  counters.submits++;
  dispatchesPending = 0;
  ringUsedSinceFlush = 0;
  pendingBuffers.clear();
}

function throwPendingErrors(): void {
  const error = takeCompileError() ?? uncapturedError;
  uncapturedError = null;
  if (error) throw error;
}

/** Submits pending work and waits until the GPU has finished all of it. */
export async function sync(): Promise<void> {
  flush();
  await device().queue.onSubmittedWorkDone();
  throwPendingErrors();
}

const stagingFree: GPUBuffer[] = [];

/** Copies `byteLength` bytes of `buffer` (from `byteOffset`) to the CPU. Waits for the GPU. */
export async function readBuffer(
  buffer: GPUBuffer,
  byteLength: number,
  byteOffset = 0,
): Promise<ArrayBuffer> {
  const size = Math.ceil(byteLength / 4) * 4;
  const index = stagingFree.findIndex((candidate) => candidate.size >= size);
  const staging = index >= 0 ? stagingFree.splice(index, 1)[0] : device().createBuffer({
    size: Math.max(256, 2 ** Math.ceil(Math.log2(size))),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  copyBuffer(buffer, staging, size, byteOffset, 0);
  flush();
  counters.readbacks++;
  try {
    await staging.mapAsync(GPUMapMode.READ, 0, size);
    const result = staging.getMappedRange(0, size).slice(0, byteLength);
    staging.unmap();
    stagingFree.push(staging);
    return result;
  } catch (error) {
    staging.destroy();
    throwPendingErrors();
    throw error;
  } finally {
    throwPendingErrors();
  }
}

/**
 * Drops commands not yet submitted and work held back (program.ts's), destroys the stream's own
 * buffers (params ring, staging, profiler), and forgets cached bind groups: their device is being
 * destroyed.
 */
export function resetStream(): void {
  heldWork = null;
  pass?.end();
  pass = null;
  encoder = null;
  dispatchesPending = 0;
  pendingBuffers.clear();
  ring?.destroy();
  ring = null;
  ringDevice = null;
  for (const staging of stagingFree.splice(0)) staging.destroy();
  if (profiler) {
    profiler.querySet.destroy();
    profiler.resolve.destroy();
    for (const batch of profiler.batches) batch.buffer.destroy();
    profiler = null;
  }
  bindGroups.clear();
  uncapturedError = null;
}

/** Time spent in one kernel, summed over its dispatches (from GPU timestamps). */
export interface KernelTime {
  /** The kernel's name. */
  name: string;
  /** Number of dispatches. */
  count: number;
  /** Total milliseconds between the start and the end of its passes. */
  milliseconds: number;
}

const PROFILE_QUERIES = 512;

interface Profiler {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  /** Kernel names of the timed passes encoded since the last resolve. */
  pending: string[];
  /** Readbacks of resolved timestamps: names and the buffer holding them. */
  batches: { names: string[]; buffer: GPUBuffer }[];
}

let profiler: Profiler | null = null;

function beginTimedPass(name: string): GPUComputePassEncoder {
  const active = profiler!;
  if (active.pending.length * 2 >= PROFILE_QUERIES) resolveTimestamps(active);
  const index = active.pending.length * 2;
  active.pending.push(name);
  encoder ??= device().createCommandEncoder();
  pass = encoder.beginComputePass({
    timestampWrites: {
      querySet: active.querySet,
      beginningOfPassWriteIndex: index,
      endOfPassWriteIndex: index + 1,
    },
  });
  return pass;
}

function resolveTimestamps(active: Profiler): void {
  const count = active.pending.length * 2;
  const target = device().createBuffer({
    size: count * 8,
    usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
  });
  const commands = closePass();
  commands.resolveQuerySet(active.querySet, 0, count, active.resolve, 0);
  commands.copyBufferToBuffer(active.resolve, 0, target, 0, count * 8);
  active.batches.push({ names: active.pending, buffer: target });
  active.pending = [];
}

/**
 * Starts timing every kernel with GPU timestamps (one pass per dispatch, so dispatch overhead
 * rises slightly while profiling). Returns false when the adapter has no timestamp queries.
 */
export function startProfiling(): boolean {
  const dev = device();
  if (!dev.features.has("timestamp-query")) return false;
  flush();
  profiler = {
    querySet: dev.createQuerySet({ type: "timestamp", count: PROFILE_QUERIES }),
    resolve: dev.createBuffer({
      size: PROFILE_QUERIES * 8,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    }),
    pending: [],
    batches: [],
  };
  return true;
}

/** Stops profiling and returns the time per kernel name, slowest first. */
export async function stopProfiling(): Promise<KernelTime[]> {
  const active = profiler;
  if (!active) return [];
  flush();
  profiler = null;
  const totals = new Map<string, KernelTime>();
  for (const batch of active.batches) {
    await batch.buffer.mapAsync(GPUMapMode.READ);
    const stamps = new BigUint64Array(batch.buffer.getMappedRange());
    batch.names.forEach((name, i) => {
      const entry = totals.get(name) ?? { name, count: 0, milliseconds: 0 };
      entry.count++;
      entry.milliseconds += Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6;
      totals.set(name, entry);
    });
    batch.buffer.destroy();
  }
  active.querySet.destroy();
  active.resolve.destroy();
  return [...totals.values()].sort((a, b) => b.milliseconds - a.milliseconds);
}
