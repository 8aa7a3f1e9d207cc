// `bench`'s driver line: which driver libraries /proc/self/maps lists, and the release in each.
import { deepEqual, equal, ok } from "node:assert/strict";
import { describeDrivers, driverPaths, loadedDrivers, mesaRelease } from "../../bench/driver.ts";
import { init } from "../../mod.ts";

Deno.test("driverPaths: Mesa's and NVIDIA's libraries, each once; the Vulkan loader and libc not", () => {
  const maps = [
    "7f00-7f10 r--p 00000000 00:1f 12 /usr/lib/x86_64-linux-gnu/libc.so.6",
    "7f10-7f20 r--p 00000000 00:1f 13 /usr/lib/x86_64-linux-gnu/libvulkan.so.1.3.239",
    "7f20-7f30 r--p 00000000 00:1f 14 /usr/lib/x86_64-linux-gnu/libvulkan_lvp.so",
    "7f30-7f40 r-xp 00001000 00:1f 14 /usr/lib/x86_64-linux-gnu/libvulkan_lvp.so",
    "7f40-7f50 r--p 00000000 00:1f 15 /usr/lib/x86_64-linux-gnu/dri/swrast_dri.so",
    "7f50-7f60 r--p 00000000 00:1f 16 /usr/lib/x86_64-linux-gnu/libgallium-25.0.7.so",
    "7f60-7f70 r--p 00000000 00:1f 17 /usr/lib/x86_64-linux-gnu/libnvidia-glcore.so.550.54.14",
    "7f70-7f80 rw-p 00000000 00:00 0 [heap]",
    "",
  ].join("\n");
  deepEqual(driverPaths(maps), [
    "/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so",
    "/usr/lib/x86_64-linux-gnu/dri/swrast_dri.so",
    "/usr/lib/x86_64-linux-gnu/libgallium-25.0.7.so",
    "/usr/lib/x86_64-linux-gnu/libnvidia-glcore.so.550.54.14",
  ]);
});

Deno.test("mesaRelease: the release string among a library's bytes, null where none", () => {
  const bytes = (text: string) => new Uint8Array([...text].map((c) => c.charCodeAt(0)));
  equal(
    mesaRelease(bytes("\x7fELF\0\0llvmpipe\0Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)\0")),
    "Mesa 25.0.7-2~bpo12+1",
  );
  equal(mesaRelease(bytes("\0Mesa 22.3.6\0")), "Mesa 22.3.6");
  equal(mesaRelease(bytes("\0Mesa\0 22.3\0")), null);
});

Deno.test("describeDrivers: release and file name of each, null for none", () => {
  equal(describeDrivers([]), null);
  equal(
    describeDrivers([
      { path: "/usr/lib/libvulkan_lvp.so", version: "Mesa 22.3.6" },
      { path: "/opt/x/swrast_dri.so", version: null },
    ]),
    "Mesa 22.3.6 (libvulkan_lvp.so), release unknown (swrast_dri.so)",
  );
});

Deno.test("loadedDrivers: after init, the adapter's driver library is among those listed", async () => {
  const { adapter } = await init();
  const drivers = loadedDrivers(adapter.description);
  // Only llvmpipe is known to be a Mesa library here; other adapters' drivers vary by machine.
  if (Deno.build.os !== "linux" || !/llvmpipe/.test(adapter.description)) return;
  const listed = JSON.stringify(drivers);
  ok(drivers.length > 0, "no driver library in /proc/self/maps");
  // Vulkan's loader also maps the hardware drivers installed beside lavapipe: not listed.
  ok(drivers.every(({ path }) => !/radeon|intel|nouveau/.test(path)), listed);
  ok(drivers.some(({ version }) => version?.startsWith("Mesa ")), `no Mesa release: ${listed}`);
});
