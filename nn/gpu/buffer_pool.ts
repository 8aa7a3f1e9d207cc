/**
 * GPU buffers recycled by size class, so that a training step after warm-up creates none.
 *
 * @module
 */

import { gpu } from "./device.ts";
import { flush } from "./stream.ts";
import { destroyMirrors, textureMemory } from "./texture.ts";

/**
 * Every buffer can be bound as storage or uniform (small weights read uniformly are fastest as
 * uniforms), copied from (readback) and written to (uploads).
 */
const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_SRC |
  GPUBufferUsage.COPY_DST;
const SMALLEST_CLASS_BYTES = 256;
/** Four classes per doubling: at most 25% of a buffer is slack. */
const CLASSES_PER_OCTAVE = 4;

/** Byte counts of the pool, for tests and leak hunting. */
export interface MemoryStats {
  /** Bytes of buffers handed out and not yet released. */
  liveBytes: number;
  /** Bytes of buffers released and waiting in the pool for reuse. */
  pooledBytes: number;
  /** Number of buffers handed out and not yet released. */
  liveBuffers: number;
  /** How many GPUBuffers were ever created (grows only when the pool has no fitting buffer). */
  buffersCreated: number;
  /** Bytes of the textures that mirror buffers read as textures (see `texture.ts`). */
  textureBytes: number;
}

const free = new Map<number, GPUBuffer[]>();
/** Each pooled buffer's size class and the pool generation (device) it belongs to. */
const classOf = new WeakMap<GPUBuffer, { size: number; generation: number }>();
let generation = 0;
const stats: Omit<MemoryStats, "textureBytes"> = {
  liveBytes: 0,
  pooledBytes: 0,
  liveBuffers: 0,
  buffersCreated: 0,
};

/** The size class that holds `bytes`: the next of 256·2^(k/4), rounded up to 16 bytes. */
export function sizeClass(bytes: number): number {
  if (bytes <= SMALLEST_CLASS_BYTES) return SMALLEST_CLASS_BYTES;
  const step = Math.ceil(Math.log2(bytes / SMALLEST_CLASS_BYTES) * CLASSES_PER_OCTAVE - 1e-9);
  const size = SMALLEST_CLASS_BYTES * 2 ** (step / CLASSES_PER_OCTAVE);
  return Math.max(bytes, Math.ceil(size / 16) * 16);
}

/** A storage buffer of at least `bytes`, from the pool when one fits. */
export function acquireBuffer(bytes: number): GPUBuffer {
  const size = sizeClass(bytes);
  const maxSize = gpu().limits.maxStorageBufferBindingSize;
  if (size > maxSize) {
    throw new Error(
      `A tensor of ${bytes} bytes is larger than this adapter's largest storage binding ` +
        `(maxStorageBufferBindingSize = ${maxSize} bytes): split it into smaller tensors.`,
    );
  }
  let buffer = free.get(size)?.pop();
  if (buffer) {
    stats.pooledBytes -= size;
  } else {
    buffer = gpu().device.createBuffer({ size, usage: STORAGE_USAGE });
    classOf.set(buffer, { size, generation });
    stats.buffersCreated++;
  }
  stats.liveBytes += size;
  stats.liveBuffers++;
  return buffer;
}

/** Gives a buffer from `acquireBuffer` back to the pool. */
export function releaseBuffer(buffer: GPUBuffer): void {
  const owner = classOf.get(buffer);
  if (owner === undefined) throw new Error("releaseBuffer: this buffer did not come from the pool");
  if (owner.generation !== generation) return; // its device was destroyed by shutdown()
  const size = owner.size;
  stats.liveBytes -= size;
  stats.liveBuffers--;
  stats.pooledBytes += size;
  let list = free.get(size);
  if (!list) free.set(size, list = []);
  list.push(buffer);
}

/**
 * The buffers waiting in the pool, for tests: filling them with NaN shows what a kernel leaves
 * unwritten in an output it was handed from the pool (else an earlier result can pass for its own).
 */
export function pooledBuffers(): GPUBuffer[] {
  return [...free.values()].flat();
}

/** Current byte counts (a copy). */
export function memoryStats(): MemoryStats {
  return { ...stats, textureBytes: textureMemory() };
}

/**
 * Destroys every pooled buffer and forgets every live one (their device is being destroyed,
 * which frees them): a later `releaseBuffer` of one of those does nothing.
 */
export function destroyPool(): void {
  trimPool();
  generation++;
  stats.liveBytes = 0;
  stats.liveBuffers = 0;
}

/**
 * Destroys every pooled (free) buffer and its texture mirror, returning their memory to the
 * driver. Submits the pending commands first, which may still use them.
 */
export function trimPool(): void {
  flush();
  destroyMirrors([...free.values()].flat());
  for (const list of free.values()) for (const buffer of list) buffer.destroy();
  free.clear();
  stats.pooledBytes = 0;
}
