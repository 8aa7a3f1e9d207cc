/**
 * wgtorch: train neural networks in Deno on WebGPU, with hand-written WGSL kernels.
 *
 * ```ts
 * import { init, tensor } from "@wgtorch/wgtorch";
 * await init();
 * const x = tensor([1, 2, 3]);
 * console.log(await x.toArray());
 * ```
 *
 * @module
 */

export * from "./nn/mod.ts";
