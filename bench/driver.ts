/**
 * Which graphics driver this process loaded, read from Linux's `/proc/self/maps`: WebGPU's adapter
 * info names llvmpipe and its LLVM but not the Mesa release, and Mesa releases differ in speed on
 * the same adapter name, so a benchmark has to say which one ran.
 *
 * @module
 */

/** A driver library mapped into this process, and the release it reports. */
export interface DriverLibrary {
  /** The library's path. */
  path: string;
  /** Its release, e.g. `"Mesa 25.0.7-2~bpo12+1"`; null where none was found in it. */
  version: string | null;
}

/** Mesa's drivers: lavapipe (Vulkan), and llvmpipe and the other Gallium drivers (GL). */
const MESA_LIBRARY = /\/(libvulkan_[a-z_]+|[a-z0-9_]+_dri|libgallium[^/]*)\.so[^/]*$/;
/** NVIDIA's libraries carry their release in the file name. */
const NVIDIA_LIBRARY = /\/libnvidia-[a-z-]+\.so\.(\d+(?:\.\d+)+)$/;
/** Mesa's software rasterizer: lavapipe (Vulkan), llvmpipe and swrast (GL), Gallium's core. */
const MESA_SOFTWARE_LIBRARY = /\/(libvulkan_lvp|swrast_dri|libgallium[^/]*)\.so[^/]*$/;
/** Mesa's release string, as its drivers report it (`VkPhysicalDeviceDriverProperties`). */
const MESA_RELEASE = /Mesa \d+\.\d+\.\d+[-.~+0-9A-Za-z]*/;

/**
 * The paths of the driver libraries in a `/proc/<pid>/maps` text, each once, in the order mapped.
 */
export function driverPaths(maps: string): string[] {
  const paths = new Set<string>();
  for (const line of maps.split("\n")) {
    const start = line.indexOf("/"); // anonymous mappings have no path
    if (start < 0) continue;
    const path = line.slice(start);
    if (MESA_LIBRARY.test(path) || NVIDIA_LIBRARY.test(path)) paths.add(path);
  }
  return [...paths];
}

/** The first Mesa release string in a library's bytes; null where it has none. */
export function mesaRelease(bytes: Uint8Array): string | null {
  // latin1 keeps one character per byte, so the match is the bytes as written.
  return new TextDecoder("latin1").decode(bytes).match(MESA_RELEASE)?.[0] ?? null;
}

/**
 * The driver libraries this process has mapped (call after the adapter is made), with their
 * releases; an empty list where `/proc` cannot be read (not Linux, or no permission). Vulkan's
 * loader maps every installed driver, so for an `adapter` described as llvmpipe only Mesa's
 * software rasterizer is listed.
 */
export function loadedDrivers(adapter = ""): DriverLibrary[] {
  let maps: string;
  try {
    maps = Deno.readTextFileSync("/proc/self/maps");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotCapable) return [];
    throw error;
  }
  const software = /llvmpipe|lavapipe/i.test(adapter);
  const paths = driverPaths(maps).filter((path) => !software || MESA_SOFTWARE_LIBRARY.test(path));
  return paths.map((path) => {
    const nvidia = path.match(NVIDIA_LIBRARY);
    if (nvidia) return { path, version: `NVIDIA ${nvidia[1]}` };
    try {
      return { path, version: mesaRelease(Deno.readFileSync(path)) };
    } catch {
      return { path, version: null }; // deleted or replaced since it was mapped
    }
  });
}

/** One line naming the drivers, e.g. `"Mesa 25.0.7 (libvulkan_lvp.so)"`; null where none. */
export function describeDrivers(drivers: readonly DriverLibrary[]): string | null {
  if (drivers.length === 0) return null;
  return drivers.map(({ path, version }) =>
    `${version ?? "release unknown"} (${path.split("/").pop()})`
  ).join(", ");
}
