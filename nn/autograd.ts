/**
 * Reverse-mode automatic differentiation: `backward()` walks the recorded graph (`graph.ts`) in
 * reverse topological order. Gradient tensors are always fresh tensors (or views) owned by
 * autograd; leaf gradients are added (out of place) to `.grad` and kept out of any `tidy` scope.
 *
 * Ops import `recordOp` and grad mode from here (re-exported from `graph.ts`); importing this
 * module registers the backward pass that `Tensor.backward()` runs.
 *
 * @module
 */

import {
  type BackwardOptions,
  GradNode,
  holdForGraph,
  isGradEnabled,
  noGrad,
  recordOp,
  registerBackward,
  withDeferredFrees,
} from "./graph.ts";
import { addGradients } from "./ops/accumulate.ts";
import { dispatchTogether } from "./gpu/program.ts";
import { keep } from "./scope.ts";
import { formatShape, ones, type Tensor } from "./tensor.ts";

export { type BackwardOptions, GradNode, holdForGraph, isGradEnabled, noGrad, recordOp };

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
  into.set(target, addGradients(previous, grad));
  previous.dispose();
  grad.dispose();
}

/** The backward pass: gradients of `root` with respect to every leaf that requires one. */
function backwardPass(root: Tensor, options: BackwardOptions): void {
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
  // Independent kernels of the backward pass (a layer's input and weight gradients) share
  // dispatches.
  withDeferredFrees(() => noGrad(() => dispatchTogether(() => walkBackward(root, options))));
}

registerBackward(backwardPass);

function walkBackward(root: Tensor, options: BackwardOptions): void {
  const grads = new Map<Tensor, Tensor>();
  // A scalar root whose node knows its gradient at 1 (a loss) never materialises that seed.
  const unitRoot = !options.grad && root.node?.unitBackwardFn !== undefined &&
    !root.node.released;
  if (!unitRoot) grads.set(root, options.grad ? options.grad.view() : ones(root.shape));
  for (const tensor of topologicalOrder(root)) {
    const node = tensor.node;
    if (unitRoot && tensor === root) {
      propagate(grads, node!, node!.unitBackwardFn!(), null, options);
      continue;
    }
    const grad = grads.get(tensor);
    grads.delete(tensor);
    if (!grad) continue;
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
    propagate(grads, node, node.backwardFn(grad), grad, options);
  }
}

/**
 * Hands the gradients a node returned (`inputGrads`, for an output gradient `grad`, or null for a
 * unit seed) to its inputs, disposes what no input took, and releases the node.
 */
function propagate(
  grads: Map<Tensor, Tensor>,
  node: GradNode,
  inputGrads: readonly (Tensor | null)[],
  grad: Tensor | null,
  options: BackwardOptions,
): void {
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
  grad?.dispose();
  // The node stays on its output, released: a second backward through it then says so.
  if (!options.retainGraph) node.release();
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
  const sum = keep(addGradients(leaf.grad, grad));
  leaf.grad.dispose();
  grad.dispose();
  leaf.grad = sum;
}
