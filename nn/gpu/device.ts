/**
 * The one WebGPU device of this process: created on the first `init()`, then shared by every op.
 *
 * @module
 */

/** What the adapter in use is, so that users see what they run on. */
export interface AdapterReport {
  /** The adapter's own description, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  description: string;
  /** Vendor as reported by the adapter (may be a number or empty). */
  vendor: string;
  /** Architecture as reported by the adapter (often empty). */
  architecture: string;
  /** True for software adapters such as Mesa's llvmpipe / lavapipe. */
  isFallbackAdapter: boolean;
  /** The backend Deno was asked to use (`DENO_WEBGPU_BACKEND`), `"default"`, or `"browser"`. */
  backend: string;
}

/** The device and what we know about it. */
export interface GpuContext {
  /** The WebGPU device every op dispatches to. */
  device: GPUDevice;
  /** The adapter's description. */
  adapter: AdapterReport;
  /** The limits the device was created with (the adapter's own maxima where we need them). */
  limits: GPUSupportedLimits;
}

let context: GpuContext | null = null;
let pending: Promise<GpuContext> | null = null;

const HOW_TO_GET_AN_ADAPTER =
  "On Linux without a GPU, Mesa's software rasteriser provides one: Deno finds llvmpipe " +
  "through GL when Mesa's EGL is installed (Debian/Ubuntu: apt-get install libegl1 " +
  "libgl1-mesa-dri), or lavapipe through Vulkan (apt-get install mesa-vulkan-drivers). " +
  "DENO_WEBGPU_BACKEND=gl|vulkan picks one.";

/** The limits we raise from WebGPU's defaults to what the adapter supports. */
const RAISED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxTextureDimension2D",
] as const;

/**
 * Creates the process's WebGPU device on first call and returns it on every later call.
 *
 * Throws an error that says what was looked for and how to get a software adapter when
 * `navigator.gpu` or an adapter is missing. Needs no Deno permission.
 *
 * @example Start the device and see what it is
 * ```ts
 * import { describeAdapter, init } from "@wgtorch/wgtorch";
 *
 * const gpu = await init();
 * console.log(describeAdapter(gpu.adapter)); // the adapter's name, vendor and backend
 * ```
 */
export function init(): Promise<GpuContext> {
  if (context) return Promise.resolve(context);
  pending ??= createContext().then((created) => (context = created)).finally(() => {
    pending = null;
  });
  return pending;
}

/**
 * An environment variable, or undefined where there is none, where the runtime has no `Deno`
 * (a browser) or where `--allow-env` does not grant it: `init()` needs no permission.
 */
function envVar(name: string): string | undefined {
  try {
    return globalThis.Deno?.env.get(name);
  } catch {
    return undefined;
  }
}

async function createContext(): Promise<GpuContext> {
  // lavapipe warns on every start when XDG_RUNTIME_DIR is unset; any writable folder will do.
  try {
    if (globalThis.Deno && !envVar("XDG_RUNTIME_DIR")) {
      Deno.env.set("XDG_RUNTIME_DIR", Deno.makeTempDirSync());
    }
  } catch { /* no env or write permission: the warning is harmless */ }
  if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) {
    throw new Error(
      "WebGPU is not available: navigator.gpu is missing in this runtime. Use Deno 2 or later " +
        "(WebGPU is built in). " + HOW_TO_GET_AN_ADAPTER,
    );
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    throw new Error(
      "WebGPU found no adapter: navigator.gpu.requestAdapter() returned null. " +
        HOW_TO_GET_AN_ADAPTER,
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) requiredLimits[name] = adapter.limits[name];
  // Timestamp queries let the profiler (stream.ts) time each kernel; optional everywhere.
  const requiredFeatures: GPUFeatureName[] = adapter.features.has("timestamp-query")
    ? ["timestamp-query"]
    : [];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  device.lost.then((info) => {
    if (info.reason !== "destroyed") {
      console.error(`wgtorch: the WebGPU device was lost (${info.reason}): ${info.message}`);
    }
    // A device destroyed by shutdown() may report this after a later init() made another.
    if (context?.device === device) context = null;
  });
  const info = adapter.info;
  return {
    device,
    adapter: {
      description: adapterName(info),
      vendor: info.vendor,
      architecture: info.architecture,
      isFallbackAdapter: info.isFallbackAdapter ?? false,
      backend: globalThis.Deno ? envVar("DENO_WEBGPU_BACKEND") ?? "default" : "browser",
    },
    limits: plainLimits(device.limits),
  };
}

/**
 * A plain copy of a device's limits (fixed for its lifetime): kernels read them per dispatch, and
 * each property of the runtime's own object is a native getter.
 */
function plainLimits(limits: GPUSupportedLimits): GPUSupportedLimits {
  const copy: Record<string, number> = {};
  for (const name in limits) copy[name] = limits[name as keyof GPUSupportedLimits] as number;
  return copy as unknown as GPUSupportedLimits;
}

/**
 * Forgets the device (after an `init()` in progress finishes) and returns it, or null when there
 * is none: for `shutdown()` (shutdown.ts), which destroys it. A later `init()` creates a new one.
 */
export async function detachDevice(): Promise<GpuContext | null> {
  if (pending) await pending.catch(() => undefined);
  const detached = context;
  context = null;
  return detached;
}

/**
 * A name for the adapter. Browsers often leave `description` (and `device`) empty to limit
 * fingerprinting: then vendor and architecture, else what kind of adapter it is.
 */
export function adapterName(info: {
  description?: string;
  device?: string;
  vendor?: string;
  architecture?: string;
  isFallbackAdapter?: boolean;
}): string {
  if (info.description) return info.description;
  if (info.device) return info.device;
  const named = [info.vendor, info.architecture].filter((part) => part).join(" ");
  if (named) return `${named} (no description given)`;
  return info.isFallbackAdapter
    ? "unnamed software adapter (the browser gave no description)"
    : "unnamed adapter (the browser gave no description)";
}

/** The device created by `init()`. Throws a clear error when `init()` has not finished. */
export function gpu(): GpuContext {
  if (!context) {
    throw new Error(
      "The WebGPU device is not ready: call `await init()` (exported by mod.ts) once before " +
        "creating tensors or models.",
    );
  }
  return context;
}

/** A one-line description of the adapter, e.g. for the first line of a training log. */
export function describeAdapter(report: AdapterReport = gpu().adapter): string {
  const kind = report.isFallbackAdapter ? "software (fallback) adapter" : "hardware adapter";
  return `${report.description} — ${kind}, backend ${report.backend}`;
}
