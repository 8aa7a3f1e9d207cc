/**
 * wgtorch: train neural networks in Deno on WebGPU, with hand-written WGSL kernels and a
 * PyTorch-shaped API — tensors, autograd, layers, losses, SGD/Adam, LR schedules, a
 * FashionMNIST pipeline, a training loop and a Ray-Tune-style tuner.
 *
 * ```ts
 * import { Adam, cnnBn, init, nllLoss, tensor, tidy } from "@wgtorch/wgtorch";
 *
 * await init();
 * const model = cnnBn();
 * const optimizer = new Adam(model.parameters(), { lr: 0.01 });
 * const x = tensor(new Float32Array(4 * 784), [4, 1, 28, 28]);
 * const y = tensor([0, 1, 2, 3], [4], { dtype: "i32" });
 * tidy(() => {
 *   optimizer.zeroGrad();
 *   nllLoss(model.forward(x), y).backward();
 *   optimizer.step();
 * });
 * ```
 *
 * @module
 */

export * from "./nn/mod.ts";
export * from "./data/mod.ts";
export * from "./train/mod.ts";
