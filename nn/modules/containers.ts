/**
 * Containers of modules, as PyTorch's: `ModuleList` (children named "0", "1", ...) and
 * `ModuleDict` (children named by key). They register their modules as children, so a model's
 * `parameters()`, `namedParameters()`, `train()` / `eval()`, `stateDict()` and
 * `loadStateDict()` see them, with PyTorch's names (`blocks.0.weight`, `heads.cls.bias`). Neither
 * has a `forward`: the model's own `forward` calls their modules.
 *
 * @module
 */

import { type AnyModule, Module } from "./module.ts";

/**
 * Modules in a list, as `torch.nn.ModuleList`: children named by position ("0", "1", ...), so the
 * parameters of its first module are `0.weight`, `0.bias`, ...
 *
 * @example Blocks of one's own, applied in a loop
 * ```ts
 * import { init, Linear, Module, ModuleList, relu, type Tensor, zeros } from "@wgtorch/wgtorch";
 *
 * class Deep extends Module {
 *   blocks = new ModuleList([new Linear(4, 4), new Linear(4, 4)]);
 *   forward(x: Tensor): Tensor {
 *     for (const block of this.blocks) x = relu(block.forward(x));
 *     return x;
 *   }
 * }
 *
 * await init();
 * const net = new Deep();
 * net.blocks.push(new Linear(4, 2));
 * console.log(Object.keys(net.stateDict()));
 * // ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "blocks.2.weight", "blocks.2.bias"]
 * console.log(net.forward(zeros([3, 4])).shape); // [3, 2]
 * ```
 */
export class ModuleList<M extends AnyModule = AnyModule> extends Module<[], never>
  implements Iterable<M> {
  #modules: M[] = [];

  /** A list holding `modules` (default none), in order. */
  constructor(modules: Iterable<M> = []) {
    super();
    this.extend(modules);
  }

  /** The number of modules. */
  get length(): number {
    return this.#modules.length;
  }

  /** The module at `index` (negative counts from the end, as `Array.at`), or undefined. */
  at(index: number): M | undefined {
    return this.#modules.at(index);
  }

  /** Appends `module` (PyTorch's `append`). Returns this. */
  push(module: M): this {
    this.#modules.push(checkModule("ModuleList.push", module));
    return this;
  }

  /** Appends every module of `modules`, in order. Returns this. */
  extend(modules: Iterable<M>): this {
    for (const module of modules) this.push(module);
    return this;
  }

  /**
   * Inserts `module` before position `index` (negative counts from the end; as PyTorch's
   * `insert`).
   */
  insert(index: number, module: M): void {
    const n = this.#modules.length;
    if (!Number.isInteger(index) || index < -n || index > n) {
      throw new Error(`ModuleList.insert: index ${index} is out of range for a list of ${n}`);
    }
    this.#modules.splice(
      index < 0 ? index + n : index,
      0,
      checkModule("ModuleList.insert", module),
    );
  }

  /** The modules, in order. */
  [Symbol.iterator](): Iterator<M> {
    return this.#modules[Symbol.iterator]();
  }

  /** Children named by position: "0", "1", ... */
  override namedChildren(): [string, AnyModule][] {
    return this.#modules.map((module, i) => [String(i), module]);
  }

  /** A ModuleList has no forward (as PyTorch's): the model's forward calls its modules. */
  forward(): never {
    throw new Error("ModuleList has no forward: call its modules from your model's forward");
  }
}

/**
 * Modules by name, as `torch.nn.ModuleDict`: children named by key, in insertion order, so the
 * parameters of the module under "cls" are `cls.weight`, `cls.bias`.
 *
 * @example Two heads on one body
 * ```ts
 * import { init, Linear, ModuleDict } from "@wgtorch/wgtorch";
 *
 * await init();
 * const heads = new ModuleDict({ cls: new Linear(8, 10), box: new Linear(8, 4) });
 * console.log(heads.keys(), Object.keys(heads.stateDict()));
 * // ["cls", "box"] ["cls.weight", "cls.bias", "box.weight", "box.bias"]
 * ```
 */
export class ModuleDict<M extends AnyModule = AnyModule> extends Module<[], never>
  implements Iterable<[string, M]> {
  #modules = new Map<string, M>();

  /** A dict holding `modules` (default none): a record, or [key, module] pairs, in order. */
  constructor(modules: Record<string, M> | Iterable<[string, M]> = {}) {
    super();
    this.update(modules);
  }

  /** The number of modules. */
  get size(): number {
    return this.#modules.size;
  }

  /** The module under `key`, or undefined. */
  get(key: string): M | undefined {
    return this.#modules.get(key);
  }

  /** Whether a module is under `key`. */
  has(key: string): boolean {
    return this.#modules.has(key);
  }

  /**
   * Puts `module` under `key` (a new key goes last; an existing one keeps its place). Keys may
   * not be empty or contain "." (they become parts of dotted names). Returns this.
   */
  set(key: string, module: M): this {
    if (typeof key !== "string" || key === "" || key.includes(".")) {
      throw new Error(
        `ModuleDict.set: key ${JSON.stringify(key)} must be a non-empty string without "."`,
      );
    }
    this.#modules.set(key, checkModule(`ModuleDict.set("${key}")`, module));
    return this;
  }

  /** Removes the module under `key` and returns it (as PyTorch's `pop`), or undefined. */
  pop(key: string): M | undefined {
    const module = this.#modules.get(key);
    this.#modules.delete(key);
    return module;
  }

  /** Puts every [key, module] of `modules` (a record or pairs), in order. Returns this. */
  update(modules: Record<string, M> | Iterable<[string, M]>): this {
    const pairs = Symbol.iterator in modules
      ? modules as Iterable<[string, M]>
      : Object.entries(modules as Record<string, M>);
    for (const [key, module] of pairs) this.set(key, module);
    return this;
  }

  /** The keys, in order. */
  keys(): string[] {
    return [...this.#modules.keys()];
  }

  /** The modules, in order. */
  values(): M[] {
    return [...this.#modules.values()];
  }

  /** The [key, module] pairs, in order. */
  entries(): [string, M][] {
    return [...this.#modules.entries()];
  }

  /** The [key, module] pairs, in order. */
  [Symbol.iterator](): Iterator<[string, M]> {
    return this.#modules.entries();
  }

  /** Children named by key. */
  override namedChildren(): [string, AnyModule][] {
    return this.entries();
  }

  /** A ModuleDict has no forward (as PyTorch's): the model's forward calls its modules. */
  forward(): never {
    throw new Error("ModuleDict has no forward: call its modules from your model's forward");
  }
}

function checkModule<M>(where: string, module: M): M {
  if (!(module instanceof Module)) {
    throw new Error(`${where}: needs a Module, got ${describe(module)}`);
  }
  return module;
}

function describe(value: unknown): string {
  if (value === null || typeof value !== "object") return String(value);
  return value.constructor?.name ?? "an object";
}
