/**
 * The `.` entry point is browser-safe: `deno bundle --platform browser` of `mod.ts` succeeds and
 * the bundle imports nothing (no `node:` module, no npm package) and loads where there is no
 * `Deno` global (as in a browser); an adapter with no description (as browsers report it) still
 * gets a name.
 */
import { adapterName } from "../nn/gpu/device.ts";
import { assert } from "./assert.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("deno bundle --platform browser of mod.ts succeeds, and the bundle imports nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wgtorch_bundle_" });
  try {
    const out = `${dir}/wgtorch.js`;
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "browser", "--format", "esm", "mod.ts", "--output", out],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const bundle = await Deno.readTextFile(out);
    assert.ok(bundle.length > 50_000, `a bundle of ${bundle.length} characters is too small`);
    const imports = bundle.match(/^\s*import\s.*from\s*["'][^"']+["']/gm) ?? [];
    assert.deepEqual(imports, [], "the bundle imports nothing");
    assert.ok(!/["']node:/.test(bundle), "no node: module in the bundle");
    // Loaded where no Deno global exists, as in a browser: nothing at module level touches it.
    const probe = `delete globalThis.Deno; const m = await import(${
      JSON.stringify(
        new URL(`file://${out}`).href,
      )
    }); console.log(typeof m.init, typeof m.tensor, typeof m.Linear);`;
    const loaded = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=js", probe],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(loaded.code, 0, new TextDecoder().decode(loaded.stderr));
    assert.equal(new TextDecoder().decode(loaded.stdout).trim(), "function function function");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("adapterName: a browser's empty description still gives a name", () => {
  assert.equal(adapterName({ description: "llvmpipe (LLVM 15)" }), "llvmpipe (LLVM 15)");
  assert.equal(
    adapterName({ description: "", device: "SwiftShader Device" }),
    "SwiftShader Device",
  );
  assert.equal(
    adapterName({ description: "", vendor: "google", architecture: "swiftshader" }),
    "google swiftshader (no description given)",
  );
  assert.match(adapterName({ description: "", isFallbackAdapter: true }), /unnamed software/);
  assert.match(adapterName({}), /unnamed adapter/);
});
