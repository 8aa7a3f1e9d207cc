/**
 * The browser entry of the training-equivalence test: `globalThis.trainSteps(options)` runs
 * train_steps.ts's steps in the page.
 *
 * @module
 */
import { trainSteps, trainThroughput } from "./train_steps.ts";
import { describeAdapter, init } from "../../nn/gpu/device.ts";
import { setKernelPolicy } from "../../nn/gpu/policy.ts";

(globalThis as Record<string, unknown>).trainSteps = trainSteps;
(globalThis as Record<string, unknown>).trainThroughput = trainThroughput;
(globalThis as Record<string, unknown>).adapterLine = async () =>
  describeAdapter((await init()).adapter);
(globalThis as Record<string, unknown>).setKernelPolicy = setKernelPolicy;
