/**
 * `Module`: the base of every layer and model, with PyTorch's API: `forward`, `parameters()`,
 * `namedParameters()`, `train()` / `eval()`, `stateDict()` / `loadStateDict()`.
 *
 * Parameters and buffers are registered by name in the constructor; child modules are found
 * among the module's own properties (in declaration order), so a model reads like PyTorch:
 * `conv1 = new Conv2d(1, 10, 5)` names its weight `conv1.weight`.
 *
 * Calling `forward` frees what the call created and no one needs (see `call_scope.ts`), so that
 * loops written as in PyTorch need no `tidy`: dispose the output (or call backward and dispose
 * it) and the memory of the call is back in the pool.
 *
 * `forward` takes one tensor and returns one by default (`Module`, that is
 * `Module<[Tensor], Tensor>`); a module with other inputs or outputs says so with the type
 * arguments: `class Heads extends Module<[Tensor, Tensor], { a: Tensor; b: Tensor }>`. Every
 * tensor returned, directly or inside arrays, plain objects or a Map, survives the call.
 *
 * @module
 */

import { checkStateDictShapes } from "../safetensors.ts";
import { callScoped } from "./call_scope.ts";
import { keep } from "../scope.ts";
import { copyBuffer, writeBuffer } from "../gpu/stream.ts";
import { formatShape, type Tensor } from "../tensor.ts";

/** A module's state: parameters and buffers by their PyTorch-style dotted names. */
export type StateDict = Record<string, Tensor>;

/** Values to load into a module: GPU tensors, or CPU arrays with their shapes. */
export type StateDictInput = Record<
  string,
  Tensor | { shape: readonly number[]; data: Float32Array }
>;

/** Options of `Module.loadStateDict`. */
export interface LoadStateDictOptions {
  /**
   * Whether every key must match (default true, as PyTorch): missing or unexpected keys throw.
   * With false, the tensors whose names match are loaded and the others are reported in the
   * result. Shape mismatches throw either way (as PyTorch).
   */
  strict?: boolean;
}

/** What `Module.loadStateDict` returns (PyTorch's `_IncompatibleKeys`). */
export interface LoadStateDictResult {
  /** The module's parameters and buffers that `state` did not hold (left as they were). */
  missingKeys: string[];
  /** The keys of `state` that name no parameter or buffer of the module (ignored). */
  unexpectedKeys: string[];
}

/**
 * Any module, whatever its `forward` takes and returns (what containers hold and
 * `namedChildren()` gives).
 */
export type AnyModule = Module<unknown[], unknown>;

/**
 * The base class of layers and models. A subclass registers its tensors with
 * `registerParameter`/`registerBuffer`; modules held in its fields are its children, named by
 * field as in PyTorch.
 *
 * @typeParam Inputs The types of `forward`'s arguments (default one tensor: `[Tensor]`).
 * @typeParam Output What `forward` returns (default `Tensor`): several outputs travel in an array,
 * a tuple, a plain record or a Map.
 *
 * @example A two-layer module of one's own
 * ```ts
 * import { init, Linear, Module, relu, type Tensor, zeros } from "@wgtorch/wgtorch";
 *
 * class TwoLayer extends Module {
 *   fc1 = new Linear(4, 8);
 *   fc2 = new Linear(8, 2);
 *   forward(x: Tensor): Tensor {
 *     return this.fc2.forward(relu(this.fc1.forward(x)));
 *   }
 * }
 *
 * await init();
 * const net = new TwoLayer();
 * console.log(Object.keys(net.stateDict()));
 * // ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
 * console.log(net.forward(zeros([3, 4])).shape); // [3, 2]
 * ```
 *
 * @example Two inputs and two outputs: the type arguments give forward's signature
 * ```ts
 * import { add, init, Linear, Module, type Tensor, zeros } from "@wgtorch/wgtorch";
 *
 * class Fuse extends Module<[Tensor, Tensor], { sum: Tensor; logits: Tensor }> {
 *   image = new Linear(6, 4);
 *   text = new Linear(3, 4);
 *   head = new Linear(4, 2);
 *   forward(image: Tensor, text: Tensor): { sum: Tensor; logits: Tensor } {
 *     const sum = add(this.image.forward(image), this.text.forward(text));
 *     return { sum, logits: this.head.forward(sum) }; // both outputs survive the call
 *   }
 * }
 *
 * await init();
 * const { sum, logits } = new Fuse().forward(zeros([5, 6]), zeros([5, 3]));
 * console.log(sum.shape, logits.shape); // [5, 4] [5, 2]
 * ```
 */
export abstract class Module<Inputs extends unknown[] = [Tensor], Output = Tensor> {
  /** True in training mode (dropout active, batch norm uses batch statistics). */
  training = true;
  #parameters = new Map<string, Tensor>();
  #buffers = new Map<string, Tensor>();

  /** Makes every call of this module's `forward` run in a module call's scope. */
  constructor() {
    const forward = this.forward;
    Object.defineProperty(this, "forward", {
      value: (...args: unknown[]) => callScoped(() => Reflect.apply(forward, this, args)),
      writable: true,
      configurable: true,
    });
  }

  /**
   * Computes the module's output from its inputs (one tensor unless the subclass's type
   * arguments say otherwise). Tensors it creates that are neither returned (directly, or inside
   * arrays, plain objects or a Map) nor needed by the returned tensors' graph are disposed when it
   * returns.
   */
  abstract forward(...inputs: Inputs): Output;

  /** Registers a trainable tensor under `name`; it is kept out of `tidy` scopes. */
  protected registerParameter(name: string, tensor: Tensor): Tensor {
    tensor.requiresGrad = true;
    this.#parameters.set(name, keep(tensor));
    return tensor;
  }

  /** Registers a non-trainable tensor (e.g. running statistics) saved in the state dict. */
  protected registerBuffer(name: string, tensor: Tensor): Tensor {
    this.#buffers.set(name, keep(tensor));
    return tensor;
  }

  /** Direct child modules with their names, in declaration order. */
  namedChildren(): [string, AnyModule][] {
    return Object.entries(this).filter((entry): entry is [string, AnyModule] =>
      entry[1] instanceof Module
    );
  }

  /**
   * Every parameter of this module and its descendants with dotted names (`conv1.weight`). A
   * tensor reached twice (a module shared by two fields or container slots) is listed once,
   * under its first name, as in PyTorch.
   */
  namedParameters(prefix = ""): [string, Tensor][] {
    const own: [string, Tensor][] = [...this.#parameters].map(([name, t]) => [prefix + name, t]);
    return firstOfEach(own.concat(
      ...this.namedChildren().map(([name, child]) => child.namedParameters(`${prefix}${name}.`)),
    ));
  }

  /**
   * Every buffer of this module and its descendants with dotted names (`bn1.running_mean`), each
   * tensor once (as `namedParameters`).
   */
  namedBuffers(prefix = ""): [string, Tensor][] {
    const own: [string, Tensor][] = [...this.#buffers].map(([name, t]) => [prefix + name, t]);
    return firstOfEach(own.concat(
      ...this.namedChildren().map(([name, child]) => child.namedBuffers(`${prefix}${name}.`)),
    ));
  }

  /** Every parameter, in registration order, each once (what optimizers take). */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, tensor]) => tensor);
  }

  /** The number of trainable values. */
  parameterCount(): number {
    return this.parameters().reduce((total, p) => total + p.size, 0);
  }

  /** Sets training mode on this module and every descendant. Returns this. */
  train(mode = true): this {
    this.training = mode;
    for (const [, child] of this.namedChildren()) child.train(mode);
    return this;
  }

  /** Sets evaluation mode (same as `train(false)`). Returns this. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Parameters and buffers by name, in PyTorch's order (each module's parameters, then its
   * buffers, then its children). The tensors are the module's own, not copies; a module shared
   * by two fields or container slots appears under both names (as in PyTorch).
   */
  stateDict(): StateDict {
    return Object.fromEntries(this.#stateEntries(""));
  }

  #stateEntries(prefix: string): [string, Tensor][] {
    const own: [string, Tensor][] = [
      ...[...this.#parameters].map(([name, t]): [string, Tensor] => [prefix + name, t]),
      ...[...this.#buffers].map(([name, t]): [string, Tensor] => [prefix + name, t]),
    ];
    return own.concat(
      ...this.namedChildren().map(([name, child]) => child.#stateEntries(`${prefix}${name}.`)),
    );
  }

  /**
   * Copies `state` into this module's parameters and buffers (in place, so optimizers keep
   * working), as PyTorch's `load_state_dict`. Strict (the default): throws one error naming every
   * missing, unexpected and mis-shaped tensor. Not strict: loads the tensors whose names match
   * and returns the others' names; mis-shaped tensors still throw. An error changes nothing.
   * PyTorch's `num_batches_tracked` entries are accepted and ignored.
   */
  loadStateDict(
    state: StateDictInput,
    { strict = true }: LoadStateDictOptions = {},
  ): LoadStateDictResult {
    const mine = this.stateDict();
    const given = Object.fromEntries(
      Object.entries(state).filter(([name]) => !name.endsWith("num_batches_tracked")),
    );
    const has = (record: object, key: string) => Object.prototype.hasOwnProperty.call(record, key);
    const missingKeys = Object.keys(mine).filter((name) => !has(given, name));
    const unexpectedKeys = Object.keys(given).filter((name) => !has(mine, name));
    const matching = Object.keys(mine).filter((name) => has(given, name));
    const shapes = (dict: Record<string, { shape: readonly number[] }>, names: string[]) =>
      Object.fromEntries(names.map((name) => [name, dict[name].shape]));
    if (strict) {
      checkStateDictShapes(
        shapes(mine, Object.keys(mine)),
        shapes(given, Object.keys(given)),
        "loadStateDict",
      );
    } else {
      checkStateDictShapes(shapes(mine, matching), shapes(given, matching), "loadStateDict");
    }
    for (const name of matching) {
      const source = given[name];
      if (!("buffer" in source) && source.data.length !== mine[name].size) {
        throw new Error(
          `loadStateDict: ${name} has ${source.data.length} values for shape ${
            formatShape(mine[name].shape)
          } (${mine[name].size} values)`,
        );
      }
    }
    for (const name of matching) {
      const source = given[name];
      const target = mine[name];
      if ("buffer" in source) {
        if (source !== target) copyTensor(source, target);
      } else {
        writeBuffer(target.buffer, source.data);
      }
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Frees every parameter and buffer (and the gradients) of this module and its descendants. */
  dispose(): void {
    for (const tensor of Object.values(this.stateDict())) {
      tensor.grad?.dispose();
      tensor.grad = null;
      tensor.dispose();
    }
  }
}

/** The entries whose tensor no earlier entry holds. */
function firstOfEach(entries: [string, Tensor][]): [string, Tensor][] {
  const seen = new Set<Tensor>();
  return entries.filter(([, tensor]) => !seen.has(tensor) && seen.add(tensor));
}

function copyTensor(source: Tensor, target: Tensor): void {
  copyBuffer(source.buffer, target.buffer, target.byteLength);
}
