/**
 * `shutdown()`: waits for the GPU, frees everything the library holds on it and destroys the
 * device, so that a process can exit while no driver thread is still at work (lavapipe's LLVM
 * threads running during `exit()` crashed Deno with SIGSEGV).
 *
 * @module
 */

import { destroyPool } from "./gpu/buffer_pool.ts";
import { detachDevice } from "./gpu/device.ts";
import { clearKernels } from "./gpu/kernel.ts";
import { resetStream } from "./gpu/stream.ts";
import { destroyTextures } from "./gpu/texture.ts";

/** Options of `shutdown`. */
export interface ShutdownOptions {
  /**
   * Longest wait (ms) for work already submitted to the GPU to finish before the device is
   * destroyed anyway; default: no limit.
   */
  timeoutMs?: number;
}

/**
 * Waits until the GPU has finished the work submitted so far (commands not yet submitted are
 * dropped), destroys pooled buffers, texture mirrors and the device, and forgets compiled
 * kernels. Tensors made before become unusable. Does nothing when there is no device, so it can
 * be called more than once; `init()` afterwards creates a new device.
 */
export async function shutdown(options: ShutdownOptions = {}): Promise<void> {
  const context = await detachDevice();
  if (!context) return;
  const done = context.device.queue.onSubmittedWorkDone().catch(() => undefined);
  if (options.timeoutMs === undefined) await done;
  else {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, options.timeoutMs));
    await Promise.race([done, timeout]);
    clearTimeout(timer);
  }
  resetStream();
  destroyPool();
  destroyTextures();
  clearKernels();
  context.device.destroy();
}
