/**
 * Several kernels as one dispatch. On llvmpipe every dispatch costs ~40-50 µs however little it
 * computes, so kernels that do not depend on each other (a layer's input and weight gradients,
 * which both read the output gradient) run as one (horizontal fusion, `fusedSource`): each keeps
 * its own bindings, prelude and body, renamed apart, as a function that the fused kernel's
 * workgroups call over consecutive ranges, one range per kernel. Single-workgroup kernels that
 * follow one another (a classifier's head and its loss) run in one workgroup, one after the other,
 * with barriers between them (vertical fusion, `sequenceSource`).
 *
 * @module
 */

import { u32 } from "./kernel.ts";

/** One kernel's WGSL pieces, as the kernel layer generated them for its own dispatch. */
export interface KernelPart {
  /** The kernel's name (for the fused kernel's name). */
  name: string;
  /** Names of its bindings, in binding order. */
  bindings: readonly string[];
  /** Its binding declarations, numbered from 0 in that order, with their reader functions. */
  declarations: string;
  /** Its prelude: module-scope constants, variables and functions. */
  prelude: string;
  /** The body of its `main`, which reads `wid`, `lid` and `group`. */
  body: string;
  /** Invocations per workgroup. */
  workgroupSize: number;
  /** Its own grid: x and y (`group` is x + y * width), layers along z. */
  workgroups: readonly [number, number, number];
}

/** Module-scope names a WGSL text declares: functions, constants, variables, structs, aliases. */
export function declaredNames(wgsl: string): string[] {
  const names = new Set<string>();
  const pattern = /^\s*(?:@[^\n]*?\s)?(?:fn|const|override|alias|struct|var(?:<[^>]*>)?)\s+(\w+)/gm;
  for (const match of wgsl.matchAll(pattern)) names.add(match[1]);
  return [...names];
}

/**
 * `wgsl` with each of `names` prefixed by `prefix` wherever it is a whole identifier (not a
 * member after a dot: `wid.x` keeps its `x` when a binding is named x).
 */
export function prefixNames(wgsl: string, names: readonly string[], prefix: string): string {
  if (names.length === 0) return wgsl;
  const alternatives = [...names].sort((a, b) => b.length - a.length).join("|");
  return wgsl.replace(new RegExp(`(?<![\\w.])(${alternatives})(?!\\w)`, "g"), `${prefix}$1`);
}

/** Workgroups of a part's own dispatch. */
function groupCount(part: KernelPart): number {
  const [x, y, z] = part.workgroups;
  return x * y * z;
}

/**
 * The WGSL of `parts` fused into one kernel of `width` x height workgroups (the caller folds
 * their total, `fusedGroups`, into that grid), with each part's bindings renamed `p<k>_<name>`
 * and renumbered in order, and its declared names renamed the same way.
 */
export function fusedSource(parts: readonly KernelPart[], width: number): string {
  const workgroupSize = sharedWorkgroupSize(parts, "fusedSource");
  let firstBinding = 0;
  let firstGroup = 0;
  const modules: string[] = [];
  const branches: string[] = [];
  parts.forEach((part, k) => {
    const first = firstBinding;
    modules.push(partModule(part, k, (declarations) =>
      declarations.replace(
        /@binding\((\d+)\)/g,
        (_, index) => `@binding(${first + Number(index)})`,
      )));
    firstBinding += part.bindings.length;
    const [x, y] = part.workgroups;
    const end = firstGroup + groupCount(part);
    branches.push(/* wgsl */ `if (linear < ${u32(end)}) {
    let local = linear - ${u32(firstGroup)};
    let inLayer = local % ${u32(x * y)};
    p${k}_main(vec3<u32>(inLayer % ${u32(x)}, inLayer / ${u32(x)}, local / ${
      u32(x * y)
    }), lid, inLayer);
    return;
  }`);
    firstGroup = end;
  });
  return /* wgsl */ `${modules.join("\n\n")}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * ${u32(width)};
  ${branches.join("\n  ")}
}`;
}

/** The workgroup size every one of `parts` has (`who` names the caller in the error). */
function sharedWorkgroupSize(parts: readonly KernelPart[], who: string): number {
  const workgroupSize = parts[0].workgroupSize;
  if (parts.some((part) => part.workgroupSize !== workgroupSize)) {
    throw new Error(`${who}: the parts' workgroup sizes differ`);
  }
  return workgroupSize;
}

/**
 * Part k as module-scope WGSL: its bindings and declared names renamed `p<k>_`, its declarations
 * passed through `declare` (which renumbers or drops bindings), its body as
 * `fn p<k>_main(wid, lid, group)`, and then each `[from, to]` of `aliases` renamed as a whole
 * identifier (a binding read through another part's variable).
 */
function partModule(
  part: KernelPart,
  k: number,
  declare: (declarations: string) => string,
  aliases: readonly (readonly [string, string])[] = [],
): string {
  const prefix = `p${k}_`;
  const names = [...part.bindings, ...declaredNames(part.declarations + "\n" + part.prelude)];
  const module = /* wgsl */ `// part ${k}: ${part.name}
${declare(prefixNames(part.declarations, names, prefix))}
${prefixNames(part.prelude, names, prefix)}
fn ${prefix}main(wid: vec3<u32>, lid: u32, group: u32) {
${prefixNames(part.body, names, prefix)}
}`;
  return aliases.reduce(
    (text, [from, to]) => text.replace(new RegExp(`(?<![\\w.])${from}(?!\\w)`, "g"), to),
    module,
  );
}

/** Workgroups of the fused kernel of `parts`, before folding into a grid. */
export function fusedGroups(parts: readonly KernelPart[]): number {
  return parts.reduce((total, part) => total + groupCount(part), 0);
}

/**
 * Where each binding of a sequence's parts is declared: `home[k][j]` is `[k, j]` for a binding
 * that keeps its own declaration, or the earlier `[part, binding]` of the same buffer (a buffer
 * that one part writes is bound once: WebGPU does not let one dispatch bind it twice).
 */
export type BindingHomes = readonly (readonly (readonly [number, number])[])[];

/** `@binding(j) var<...> name: type;` of a generated declaration (`declaration` in program.ts). */
const DECLARATION = /@group\(0\) @binding\((\d+)\) var(<[^>]*>)? (\w+): ([^;\n]+);/g;

/** The address space and type of each binding a part declares, by binding index. */
export function declaredBindings(part: KernelPart): { space: string; type: string }[] {
  const found: { space: string; type: string }[] = [];
  for (const match of part.declarations.matchAll(DECLARATION)) {
    found[Number(match[1])] = { space: match[2] ?? "", type: match[4] };
  }
  return found;
}

/**
 * The WGSL of single-workgroup `parts` run one after another in one workgroup: each part's
 * bindings and declared names renamed `p<k>_` as in `fusedSource`, a binding homed in an earlier
 * part (`homes`) dropped and read through that part's name, the kept ones numbered in order
 * (declared `read_write` where `readWrite[k][j]`: a later part writes the buffer), and a storage
 * and a workgroup barrier between parts, so that each part sees what the ones before it wrote.
 */
export function sequenceSource(
  parts: readonly KernelPart[],
  homes: BindingHomes,
  readWrite: readonly (readonly boolean[])[],
): string {
  const workgroupSize = sharedWorkgroupSize(parts, "sequenceSource");
  const kept = (k: number, j: number) => homes[k][j][0] === k && homes[k][j][1] === j;
  const numbers = new Map<string, number>();
  parts.forEach((part, k) =>
    part.bindings.forEach((_, j) => {
      if (kept(k, j)) numbers.set(`${k}:${j}`, numbers.size);
    })
  );
  const modules = parts.map((part, k) => {
    const declare = (declarations: string) =>
      declarations.replace(DECLARATION, (_, index, space, name, type) => {
        const j = Number(index);
        if (!kept(k, j)) return "";
        const access = readWrite[k][j] ? "<storage, read_write>" : space ?? "";
        return `@group(0) @binding(${numbers.get(`${k}:${j}`)}) var${access} ${name}: ${type};`;
      });
    // Aliased bindings read the earlier part's variable.
    const aliases = part.bindings.flatMap((name, j) => {
      if (kept(k, j)) return [];
      const [home, binding] = homes[k][j];
      return [[`p${k}_${name}`, `p${home}_${parts[home].bindings[binding]}`] as const];
    });
    return partModule(part, k, declare, aliases);
  });
  const calls = parts.map((_, k) => `p${k}_main(wid, lid, 0u);`);
  return /* wgsl */ `${modules.join("\n\n")}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${calls.join("\n  storageBarrier();\n  workgroupBarrier();\n  ")}
}`;
}
