/**
 * The study's command line uses the library only through its public entry points: every static
 * import of `cli.ts` and `cli/*.ts` that lands in the library must be an entry point file, so the
 * CLI can never depend on something a user of the package could not import.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const root = new URL("../../", import.meta.url);
const rootPath = fileURLToPath(root);

/** The entry point files (`deno.json` `exports`), relative to the root. */
const ENTRY_FILES = new Set(["mod.ts", "data/mod.ts", "models/mod.ts", "train/tune/mod.ts"]);

/**
 * Imports still waiting for other work of the same change, each with its reason. Each entry
 * must still be needed (the test fails on a stale one), so the list can only shrink.
 */
const PENDING: Record<string, { imports: readonly string[]; reason: string }> = {};

interface GraphModule {
  specifier: string;
  dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
}

/** The module graph of `file` (`deno info --json`): static imports, types included. */
async function graph(file: string): Promise<GraphModule[]> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", file],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  assert.equal(code, 0, `deno info --json ${file}: ${decoder.decode(stderr)}`);
  return (JSON.parse(decoder.decode(stdout)) as { modules: GraphModule[] }).modules;
}

/** `url` relative to the repository root, or null when it lies outside (node:, jsr:, ...). */
function local(url: string): string | null {
  return url.startsWith("file://") && fileURLToPath(url).startsWith(rootPath)
    ? fileURLToPath(url).slice(rootPath.length)
    : null;
}

/** The CLI's files and, for each, the library files it imports (entry points or not). */
async function cliImports(): Promise<Map<string, string[]>> {
  const cliFiles = ["cli.ts"];
  for await (const entry of Deno.readDir(new URL("cli/", root))) {
    if (entry.isFile && entry.name.endsWith(".ts")) cliFiles.push(`cli/${entry.name}`);
  }
  const imports = new Map<string, string[]>();
  for (const file of cliFiles) {
    if (imports.has(file)) continue;
    for (const module of await graph(file)) {
      const from = local(module.specifier);
      if (from === null || !cliFiles.includes(from)) continue;
      const targets = (module.dependencies ?? []).flatMap((dependency) =>
        [dependency.code?.specifier, dependency.type?.specifier].flatMap((url) => {
          const to = url ? local(url) : null;
          return to !== null && to !== "cli.ts" && !to.startsWith("cli/") ? [to] : [];
        })
      );
      imports.set(from, [...new Set(targets)].sort());
    }
  }
  assert.deepEqual([...imports.keys()].sort(), cliFiles.sort(), "every CLI file was read");
  return imports;
}

Deno.test("cli.ts and cli/ import the library only through its entry points", async () => {
  const imports = await cliImports();
  const problems: string[] = [];
  for (const [file, targets] of imports) {
    const pending = PENDING[file]?.imports ?? [];
    for (const target of targets) {
      if (!ENTRY_FILES.has(target) && !pending.includes(target)) {
        problems.push(
          `${file} imports ${target}: import it from an entry point (${
            [...ENTRY_FILES].join(", ")
          }); if no entry point offers it, export it deliberately or keep a CLI-private copy`,
        );
      }
    }
    for (const target of pending) {
      if (!targets.includes(target)) {
        problems.push(`${file} no longer imports ${target}: remove it from PENDING`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

Deno.test("the entry point files are the ones deno.json exports", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))) as {
    exports: Record<string, string>;
  };
  const library = Object.entries(config.exports).filter(([name]) => name !== "./cli")
    .map(([, file]) => file.replace(/^\.\//, ""));
  assert.deepEqual(library.sort(), [...ENTRY_FILES].sort());
});
