/**
 * The core entry point (`mod.ts`) runs outside Deno's permissions and outside Deno: it imports no
 * `node:` or `npm:` module, loads where there is no `Deno` global (a browser), and `init()` needs
 * no permission (README "Permissions").
 */
import assert from "node:assert/strict";
import { basename as nodeBasename, dirname as nodeDirname } from "node:path";
import { basename, dirname, join } from "../train/tune/fs_atomic.ts";

const root = new URL("../", import.meta.url);
const modUrl = new URL("mod.ts", root).href;

/** Runs `deno <args>` in the repository root; returns its exit code and output. */
async function deno(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Runs `source` as a script with no permissions at all (`--no-prompt`: a denial throws). */
async function runWithoutPermissions(source: string) {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/script.ts`;
    await Deno.writeTextFile(script, source);
    return await deno(["run", "--no-prompt", "--no-check", script]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("mod.ts's module graph holds no node: and no npm: module", async () => {
  const { code, stdout, stderr } = await deno(["info", "--json", "mod.ts"]);
  assert.equal(code, 0, stderr);
  const graph = JSON.parse(stdout) as { modules: { specifier: string }[] };
  assert.ok(graph.modules.length > 10, "deno info listed too few modules to be the core's graph");
  const foreign = graph.modules.map((m) => m.specifier).filter((s) =>
    s.startsWith("node:") || s.startsWith("npm:")
  );
  assert.deepEqual(foreign, [], `mod.ts imports ${foreign.join(", ")}: the core must not`);
});

Deno.test("mod.ts loads without a Deno global, and its file functions say what they need", async () => {
  const { code, stdout, stderr } = await runWithoutPermissions(`
    const deno = globalThis.Deno;
    delete globalThis.Deno;
    const core = await import(${JSON.stringify(modUrl)});
    let message = "no error";
    try {
      await core.loadSafetensors("weights.safetensors");
    } catch (error) {
      message = error.message;
    }
    console.log(typeof globalThis.Deno, typeof core.tensor, message);
    deno.exit(0);
  `);
  assert.equal(code, 0, stderr);
  assert.match(
    stdout,
    /^undefined function loadSafetensors\("weights.safetensors"\) needs Deno's file system/,
  );
});

Deno.test("init() needs no permission: it runs a kernel with none granted", async () => {
  const { code, stdout, stderr } = await runWithoutPermissions(`
    import { add, init, shutdown, tensor } from ${JSON.stringify(modUrl)};
    await init();
    console.log(Array.from(await add(tensor([1, 2]), tensor([3, 4])).toArray()).join(","));
    await shutdown();
  `);
  assert.equal(code, 0, `init() failed without permissions: ${stderr}`);
  assert.equal(stdout.trim(), "4,6");
});

Deno.test("fs_atomic's path helpers agree with node:path", () => {
  for (const path of ["a/b/c.txt", "c.txt", "/c.txt", "/", "a/b/", "./x", "a//b", "../q/r"]) {
    assert.equal(dirname(path), nodeDirname(path), `dirname(${JSON.stringify(path)})`);
    assert.equal(basename(path), nodeBasename(path), `basename(${JSON.stringify(path)})`);
  }
  assert.equal(join("a", "b"), "a/b");
  assert.equal(join("a/", "b"), "a/b");
  assert.equal(join("/", "b"), "/b");
});
