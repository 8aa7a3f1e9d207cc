/**
 * The adapter policy: every choice that depends on what kind of GPU runs the kernels, in one
 * place, chosen once per device.
 *
 * - **software** (Mesa's llvmpipe/lavapipe, SwiftShader: `isFallbackAdapter`): a workgroup's
 *   invocations are SIMD lanes of one CPU core, storage loads go lane by lane while texture loads
 *   are vectorised, and each dispatch costs tens of microseconds. So inputs are read through
 *   texture mirrors, workgroups are small (one or a few SIMD vectors) and a dispatch wants only a
 *   few hundred lanes (docs/DESIGN.md has the measurements).
 * - **hardware** (a real GPU): inputs are read straight from storage buffers (no copy into a
 *   texture), workgroups are 64 wide and a dispatch wants thousands of lanes.
 *
 * `WGTORCH_KERNEL_POLICY=software|hardware` (or `setKernelPolicy`) forces one, so that both run
 * on any machine: the tests run every op under each.
 *
 * @module
 */

import { gpu } from "./device.ts";

/** The two policies. */
export type PolicyName = "software" | "hardware";

/** What the kernels of a device are planned with. */
export interface KernelPolicy {
  /** Which policy this is. */
  readonly name: PolicyName;
  /** The adapter this policy is tuned for within its kind ("" when generic, "llvmpipe"). */
  readonly tuning: string;
  /** Read f32 inputs through rgba32float texture mirrors (else as storage arrays). */
  readonly textureInputs: boolean;
  /**
   * Inputs that a kernel reads about once per element go through a texture only from this many
   * elements: each mirror copy breaks the compute pass (~20-25 µs on llvmpipe), more than lane
   * by lane storage loads cost on small tensors (equal near 4,096 elements, measured).
   */
  readonly textureMinElements: number;
  /**
   * Inputs of at most this many bytes are read as uniform arrays (0: never). On llvmpipe a
   * uniform load at a per-lane offset is one vectorised gather and needs no texture copy.
   */
  readonly uniformInputBytes: number;
  /** Invocations per workgroup of element-wise and reduction kernels. */
  readonly elementwiseWorkgroup: number;
  /** Invocations per workgroup of matmul and of the small update kernels. */
  readonly narrowWorkgroup: number;
  /** Most workgroups of the per-parameter update kernels. */
  readonly updateMaxGroups: number;
  /**
   * Optimizer update kernels read all their tensors through textures from this many elements
   * (they read four or five tensors, so the copies pay off later than `textureMinElements`).
   */
  readonly updateTextureMinElements: number;
  /**
   * The most columns (along the lanes' dimension) of a matmul lane's register block, whose rows
   * are 16: on llvmpipe every accumulator is spilled anyway and a wider block loads each value
   * for more products; a GPU keeps the block in registers.
   */
  readonly matmulLaneTile: number;
  /** Lanes a conv2d forward or input-gradient dispatch aims for. */
  readonly convLanes: number;
  /**
   * Most outputs one conv2d forward or stride-1 input-gradient lane accumulates. On llvmpipe
   * their FMAs load both operands anyway and touch each accumulator once per kernel (or
   * gradient) row, so large blocks pay: the study's conv2 input gradient at batch 32 ran ~30%
   * faster as 4 rows x 5 channels (240 values) than as 4 x 2. A GPU keeps accumulators in
   * registers.
   */
  readonly convAccumulators: number;
  /** Most input-gradient rows one stride-1 conv2d input-gradient lane owns. */
  readonly inputGradRows: number;
  /** Most values (rows x columns x channels) one stride-1 conv2d input-gradient lane owns. */
  readonly inputGradAccumulators: number;
  /**
   * Lanes a conv2d weight-gradient dispatch aims for. Lanes beyond the blocks come from chunks
   * of the batch, each writing a partial sum of every weight that a second kernel adds up; on
   * llvmpipe that sum costs ~20 µs per chunk of the study's 5,000 weights (the partials written
   * by one core are read by the other), so fewer chunks win.
   */
  readonly weightGradLanes: number;
  /**
   * Most weights one conv2d weight-gradient lane accumulates. On llvmpipe each of its FMAs loads
   * both operands anyway, so a spilled accumulator costs little and bigger blocks save texel
   * loads. Measured on the study's convolutions at batch 32, one run with both: 250 accumulators
   * and 80 lanes (10 output channels per lane, 4 chunks for conv2 as before) took conv1's weight
   * gradient from 0.91 to 0.75 ms and conv2's from 1.38 to 1.23 (100 and 192 before; 250 with
   * 192 lanes made conv2 11 chunks, whose sum cost what its kernel saved). A GPU keeps
   * accumulators in registers, where 100 already costs occupancy.
   */
  readonly weightGradAccumulators: number;
  /**
   * Rows of this many elements or more are shared by a workgroup's invocations, which combine
   * their partial maxima and sums in workgroup memory: contiguous softmax rows
   * (`softmax_rows.ts`) and the elements of each output of a sum over dims (`reduce_dim.ts`);
   * shorter rows take one invocation each. llvmpipe runs barriers and workgroup memory lane by
   * lane, so there every row keeps one invocation.
   */
  readonly cooperativeRowLength: number;
  /**
   * A convolution's forward (not fused with pooling or batch norm) takes the general kernel,
   * whose lanes hold 32 outputs or fewer, when that kernel has at least this many lanes; else
   * the specialised kernel, whose blocks suit llvmpipe. On an NVIDIA H200 the general kernel ran
   * 3x3 "same" convolutions 1.6-1.7x faster and the study's conv1 about even, while conv2 at
   * batch 128 (5,120 lanes of the general kernel) ran 1.25x faster specialised.
   */
  readonly generalConvLanes: number;
  /**
   * Most WGSL characters (prelude and body) of a kernel that shares a dispatch with others
   * (`dispatchTogether`). On llvmpipe a part still costs the other parts' workgroups ~13% of
   * running it (an `if` no lane enters is skipped, but not for free: docs/DESIGN.md): with the
   * study's conv2 input and weight gradients (~130,000 and ~70,000 characters) in one dispatch,
   * a CNN training step at batch 128 took 11.0-12.7 ms against 9.4-9.7 with them apart
   * (alternated in one process), while small kernels gain the dispatch they save (a linear
   * layer's two gradient matmuls, ~15,000-50,000 characters: 185-234 against 217-285 µs per pair
   * at batch 32). Not measured on a GPU: the hardware policy keeps the same
   * limit, so that no shader grows past the sizes its kernels have alone.
   */
  readonly fusedKernelSource: number;
}

const SOFTWARE: KernelPolicy = {
  name: "software",
  tuning: "",
  textureInputs: true,
  textureMinElements: 4096,
  uniformInputBytes: 0,
  elementwiseWorkgroup: 64,
  narrowWorkgroup: 8,
  updateMaxGroups: 64,
  updateTextureMinElements: 8192,
  matmulLaneTile: 16,
  convLanes: 192,
  convAccumulators: 256,
  inputGradRows: 8,
  inputGradAccumulators: 256,
  weightGradLanes: 80,
  weightGradAccumulators: 250,
  cooperativeRowLength: Infinity,
  generalConvLanes: Infinity,
  fusedKernelSource: 60_000,
};

const HARDWARE: KernelPolicy = {
  name: "hardware",
  tuning: "",
  textureInputs: false,
  textureMinElements: Infinity,
  uniformInputBytes: 0,
  elementwiseWorkgroup: 64,
  narrowWorkgroup: 64,
  updateMaxGroups: 4096,
  updateTextureMinElements: Infinity,
  matmulLaneTile: 8,
  convLanes: 8192,
  convAccumulators: 128,
  inputGradRows: 8,
  inputGradAccumulators: 128,
  weightGradLanes: 8192,
  weightGradAccumulators: 100,
  cooperativeRowLength: 128,
  generalConvLanes: 8192,
  fusedKernelSource: 60_000,
};

/**
 * The software policy on Mesa's llvmpipe (lavapipe through Vulkan), which compiles big shaders
 * well: the study's conv2 input gradient ran 12 rows x 2 channels per lane (288 values) in
 * 0.62-0.64 ms at batch 32 and 1.88-1.93 at 128, against 0.74-0.76 and 2.41-2.42 for the 6 x 2
 * that 8 rows allow (blocks timed one by one, alternated, in one session). Chromium's
 * SwiftShader, the other software adapter, took over 20 s per CNN training step with that block,
 * so it keeps the generic limits.
 */
const LLVMPIPE: KernelPolicy = {
  ...SOFTWARE,
  tuning: "llvmpipe",
  inputGradRows: 16,
  inputGradAccumulators: 288,
  uniformInputBytes: 65_536,
};

const POLICIES: Record<PolicyName, KernelPolicy> = { software: SOFTWARE, hardware: HARDWARE };

/**
 * The policy `name` tuned for the adapter described as `description`: the software policy on
 * llvmpipe or lavapipe is `LLVMPIPE`.
 */
export function policyFor(name: PolicyName, description: string): KernelPolicy {
  if (name === "software" && /llvmpipe|lavapipe/i.test(description)) return LLVMPIPE;
  return POLICIES[name];
}

let forced: PolicyName | null = null;
let chosen: { device: GPUDevice; policy: KernelPolicy } | null = null;

/** The policy named by `WGTORCH_KERNEL_POLICY`, if set (and readable: browsers have no env). */
function policyFromEnvironment(): PolicyName | null {
  let value: string | undefined;
  try {
    value = (globalThis as { Deno?: typeof Deno }).Deno?.env.get("WGTORCH_KERNEL_POLICY");
  } catch {
    return null; // no --allow-env: the adapter decides
  }
  if (value === undefined || value === "") return null;
  if (value !== "software" && value !== "hardware") {
    throw new Error(
      `WGTORCH_KERNEL_POLICY=${value} is not a kernel policy: use "software" or "hardware"`,
    );
  }
  return value;
}

/**
 * Forces a policy for kernels planned from now on (`null`: the adapter decides again). Kernels
 * already compiled keep theirs; results are the same under both, only speed differs.
 */
export function setKernelPolicy(name: PolicyName | null): void {
  if (name !== null && !(name in POLICIES)) {
    throw new Error(`setKernelPolicy: "${name}" is not a policy: use "software" or "hardware"`);
  }
  forced = name;
  chosen = null;
}

/** The policy of the current device: forced, else from the environment, else from the adapter. */
export function kernelPolicy(): KernelPolicy {
  const { device, adapter } = gpu();
  if (chosen?.device === device) return chosen.policy;
  const name = forced ?? policyFromEnvironment() ??
    (adapter.isFallbackAdapter ? "software" : "hardware");
  chosen = { device, policy: policyFor(name, adapter.description) };
  return chosen.policy;
}
