/**
 * The module graph has no import cycles: a cycle makes load order matter and hides a missing
 * layer. Reads the graph that `deno info --json` resolves from every entry point.
 */
import { assert } from "./assert.ts";

const ENTRY_POINTS = [
  "mod.ts",
  "data/mod.ts",
  "train/tune/mod.ts",
  "models/mod.ts",
  "cli.ts",
  "bench/mod.ts",
];
const ROOT = new URL("../", import.meta.url);

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier: string } }[];
}

/** Local module → the local modules it imports (statically). */
async function moduleGraph(entry: string): Promise<Map<string, string[]>> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as { modules: InfoModule[] };
  const local = (specifier: string) => specifier.startsWith(ROOT.href);
  const graph = new Map<string, string[]>();
  for (const module of info.modules) {
    if (!local(module.specifier)) continue;
    const imports = (module.dependencies ?? []).map((d) => d.code?.specifier)
      .filter((s): s is string => s !== undefined && local(s));
    graph.set(
      module.specifier.slice(ROOT.href.length),
      imports.map((s) => s.slice(ROOT.href.length)),
    );
  }
  return graph;
}

/** Every strongly connected component of more than one module (or a module importing itself). */
export function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) found.push(component);
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

Deno.test("cycles finds a cycle and passes a tree", () => {
  const cyclic = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
  assert.deepEqual(cycles(cyclic).map((c) => c.sort()), [["a", "b", "c"]]);
  assert.deepEqual(cycles(new Map([["a", ["b", "c"]], ["b", ["c"]], ["c", []]])), []);
  assert.deepEqual(cycles(new Map([["a", ["a"]]])), [["a"]]);
});

for (const entry of ENTRY_POINTS) {
  Deno.test(`no import cycles reachable from ${entry}`, async () => {
    const found = cycles(await moduleGraph(entry));
    assert.deepEqual(found, [], `import cycles: ${JSON.stringify(found)}`);
  });
}
