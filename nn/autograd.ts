/**
 * Reverse-mode automatic differentiation on a tape of op nodes.
 *
 * Every differentiable op calls `recordOp` with its output, its inputs and a closure that maps
 * the output's gradient to the inputs' gradients. `backward()` walks the nodes in reverse
 * topological order. Gradient tensors are always fresh tensors (or views) owned by autograd;
 * leaf gradients are added (out of place) to `.grad` and kept out of any `tidy` scope.
 *
 * @module
 */

import { add } from "./ops/elementwise.ts";
import { keep } from "./scope.ts";
import { formatShape, ones, type Tensor } from "./tensor.ts";

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
   */
  constructor(
    readonly name: string,
    readonly inputs: readonly Tensor[],
    readonly backwardFn: (grad: Tensor) => readonly (Tensor | null)[],
    readonly saved: readonly Tensor[],
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
 * gradient; otherwise frees `saved` at once. Returns `output`.
 */
export function recordOp(
  name: string,
  output: Tensor,
  inputs: readonly Tensor[],
  backwardFn: (grad: Tensor) => readonly (Tensor | null)[],
  saved: readonly Tensor[] = [],
): Tensor {
  if (!gradEnabled || !inputs.some((input) => input.requiresGrad)) {
    for (const tensor of saved) tensor.dispose();
    return output;
  }
  for (const tensor of saved) keep(tensor);
  output.requiresGrad = true;
  output.node = new GradNode(name, inputs, backwardFn, saved);
  return output;
}

function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [tensor, next] = top;
    const inputs = tensor.node?.inputs ?? [];
    if (next < inputs.length) {
      top[1]++;
      const input = inputs[next];
      if (input.node && !visited.has(input)) {
        visited.add(input);
        stack.push([input, 0]);
      }
    } else {
      order.push(tensor);
      stack.pop();
    }
  }
  return order.reverse();
}

function accumulate(into: Map<Tensor, Tensor>, target: Tensor, grad: Tensor): void {
  const previous = into.get(target);
  if (!previous) {
    into.set(target, grad);
    return;
  }
  into.set(target, add(previous, grad));
  previous.dispose();
  grad.dispose();
}

/** Implements `Tensor.backward()`. */
export function runBackward(
  root: Tensor,
  options: { grad?: Tensor; retainGraph?: boolean } = {},
): void {
  if (!root.requiresGrad) {
    throw new Error(
      "backward(): this tensor does not require a gradient: no input of the ops that made it " +
        "has requiresGrad set (or it was computed inside noGrad())",
    );
  }
  if (!options.grad && root.size !== 1) {
    throw new Error(
      `backward(): called on a tensor of shape ${formatShape(root.shape)}; it needs a scalar, ` +
        "or pass { grad } with the output's gradient",
    );
  }
  const outerFrees = freeAfterBackward;
  freeAfterBackward = [];
  try {
    noGrad(() => walkBackward(root, options));
  } finally {
    const frees = freeAfterBackward;
    freeAfterBackward = outerFrees;
    for (const tensor of frees) tensor.dispose();
  }
}

function walkBackward(root: Tensor, options: { grad?: Tensor; retainGraph?: boolean }): void {
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, options.grad ? options.grad.view() : ones(root.shape));
  for (const tensor of topologicalOrder(root)) {
    const grad = grads.get(tensor);
    grads.delete(tensor);
    if (!grad) continue;
    const node = tensor.node;
    if (!node) {
      storeLeafGrad(tensor, grad);
      continue;
    }
    if (node.released) {
      grad.dispose();
      throw new Error(
        `backward(): the output of ${node.name} (${tensor}) was disposed, or its graph was ` +
          "already freed by an earlier backward(); call backward() before disposing " +
          "(inside the same tidy), or pass { retainGraph: true } to backward twice",
      );
    }
    const inputGrads = node.backwardFn(grad);
    const owned = new Set<Tensor>();
    node.inputs.forEach((input, i) => {
      const inputGrad = inputGrads[i];
      if (inputGrad) owned.add(inputGrad);
      if (!inputGrad || !input.requiresGrad) return;
      if (inputGrad.size !== input.size) {
        throw new Error(
          `backward(): ${node.name} returned a gradient of shape ` +
            `${formatShape(inputGrad.shape)} for an input of shape ${formatShape(input.shape)}`,
        );
      }
      const mine = inputGrad.view(input.shape);
      if (input.node) accumulate(grads, input, mine);
      else storeLeafGrad(input, mine);
    });
    for (const returned of owned) if (returned !== grad) returned.dispose();
    grad.dispose();
    // The node stays on its output, released: a second backward through it then says so.
    if (!options.retainGraph) node.release();
  }
}

function storeLeafGrad(leaf: Tensor, grad: Tensor): void {
  if (!leaf.requiresGrad) {
    grad.dispose();
    return;
  }
  keep(grad);
  if (!leaf.grad || leaf.grad.isDisposed) {
    leaf.grad = grad;
    return;
  }
  const sum = keep(add(leaf.grad, grad));
  leaf.grad.dispose();
  grad.dispose();
  leaf.grad = sum;
}
