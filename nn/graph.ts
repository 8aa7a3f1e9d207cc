/**
 * The recorded graph: `recordOp` attaches a `GradNode` to an op's output, grad mode (`noGrad`),
 * and who owns the tensors the graph keeps alive. `backward()` itself lives in `autograd.ts`,
 * which registers it here: tensors and ops import this module, which imports no op, so the
 * module graph has no cycle.
 *
 * @module
 */

import { keep } from "./scope.ts";
import type { Tensor } from "./tensor.ts";

/** The record of one op application, kept on its output tensor until backward frees it. */
export class GradNode {
  /** Set once the node's saved state is freed (after backward, or when its output is disposed). */
  released = false;
  /** Inputs this node keeps alive for backward (see `holdForGraph`), let go when it is released. */
  readonly held: Tensor[] = [];

  /**
   * Records one op application.
   *
   * @param name the op's name, for error messages
   * @param inputs the op's tensor inputs
   * @param backwardFn maps the output's gradient to one gradient (or null) per input
   * @param saved tensors only this node uses (e.g. pooling indices), freed with it
   * @param unitBackwardFn backwardFn at an output gradient of ones, without that tensor: what
   *   `backward()` calls on a scalar root, so a loss's gradient skips filling its seed
   */
  constructor(
    readonly name: string,
    readonly inputs: readonly Tensor[],
    readonly backwardFn: (grad: Tensor) => readonly (Tensor | null)[],
    readonly saved: readonly Tensor[],
    readonly unitBackwardFn?: () => readonly (Tensor | null)[],
  ) {}

  /** Frees the saved state, and the held inputs that no other node holds. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const tensor of this.saved) tensor.dispose();
    for (const tensor of this.held.splice(0)) letGo(tensor);
  }
}

/** How many nodes hold each tensor that the graph owns. */
const holders = new WeakMap<Tensor, number>();
/** While backward runs: tensors whose last holder let go, freed when it ends. */
let freeAfterBackward: Tensor[] | null = null;

/**
 * Runs `fn` (a backward pass) with frees deferred: a node released during it may hold inputs that
 * nodes below it still read, so they are disposed when `fn` ends.
 */
export function withDeferredFrees(fn: () => void): void {
  const outer = freeAfterBackward;
  freeAfterBackward = [];
  try {
    fn();
  } finally {
    const frees = freeAfterBackward;
    freeAfterBackward = outer;
    for (const tensor of frees) tensor.dispose();
  }
}

/**
 * Makes `node` keep `input` alive: the graph then owns `input`, which is disposed when every node
 * holding it is released (by backward, or by disposing the output that carries it). Used for
 * intermediates of a module call that backward still needs.
 */
export function holdForGraph(node: GradNode, input: Tensor): void {
  node.held.push(input);
  holders.set(input, (holders.get(input) ?? 0) + 1);
}

function letGo(tensor: Tensor): void {
  const count = (holders.get(tensor) ?? 1) - 1;
  if (count > 0) {
    holders.set(tensor, count);
    return;
  }
  holders.delete(tensor);
  // Backward releases a node before the nodes below it ran, which may still read this tensor.
  if (freeAfterBackward) freeAfterBackward.push(tensor);
  else tensor.dispose();
}

let gradEnabled = true;

/** Whether ops currently record the graph. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording any graph (for evaluation and optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/**
 * Attaches a backward closure to `output` when grad mode is on and an input requires a
 * gradient; otherwise frees `saved` at once. Returns `output`. `unitBackwardFn`, for ops that
 * end a graph (losses), is `backwardFn` at a gradient of ones (see `GradNode`).
 */
export function recordOp(
  name: string,
  output: Tensor,
  inputs: readonly Tensor[],
  backwardFn: (grad: Tensor) => readonly (Tensor | null)[],
  saved: readonly Tensor[] = [],
  unitBackwardFn?: () => readonly (Tensor | null)[],
): Tensor {
  if (!gradEnabled || !inputs.some((input) => input.requiresGrad)) {
    for (const tensor of saved) tensor.dispose();
    return output;
  }
  for (const tensor of saved) keep(tensor);
  output.requiresGrad = true;
  output.node = new GradNode(name, inputs, backwardFn, saved, unitBackwardFn);
  return output;
}

/** What `Tensor.backward()` takes. */
export interface BackwardOptions {
  /** The gradient of the output (default: 1 for a scalar output). */
  grad?: Tensor;
  /** Keep the graph for another backward (default: free it). */
  retainGraph?: boolean;
}

let backwardPass: ((root: Tensor, options: BackwardOptions) => void) | null = null;

/** Called once by `autograd.ts`: the implementation of `Tensor.backward()`. */
export function registerBackward(pass: (root: Tensor, options: BackwardOptions) => void): void {
  backwardPass = pass;
}

/** Implements `Tensor.backward()` through the registered pass. */
export function runBackward(root: Tensor, options: BackwardOptions = {}): void {
  if (!backwardPass) {
    throw new Error(
      "backward(): autograd is not loaded; import wgtorch from its entry point (mod.ts), " +
        "which loads it",
    );
  }
  backwardPass(root, options);
}
