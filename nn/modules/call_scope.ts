/**
 * The implicit scope of a module call, so that PyTorch-style code needs no `tidy`: when
 * `forward` returns, every tensor it created is disposed unless it is returned (alone, or inside
 * the arrays, tuples, plain records or Map of a forward with several outputs) or an autograd node
 * reachable from what it returns still needs it. Those the graph needs are handed to the graph
 * (`holdForGraph`): backward frees them, and so does disposing the output without backward. In
 * `noGrad` nothing is recorded, so every intermediate goes at once.
 *
 * @module
 */

import { holdForGraph } from "../autograd.ts";
import { ownCreated, returnedItems, track } from "../scope.ts";
import { Tensor } from "../tensor.ts";

/**
 * For each module call in progress, the tensors that calls nested in it handed to the graph: the
 * graph walk of the enclosing call passes through them to reach its own intermediates.
 */
const handedToGraph: Set<Tensor>[] = [];

/** Runs `forward` in a module call's scope (see the module comment). Returns its result. */
export function callScoped<T>(forward: () => T): T {
  const nested = new Set<Tensor>();
  handedToGraph.push(nested);
  let run: ReturnType<typeof ownCreated<T>>;
  try {
    run = ownCreated(forward);
  } finally {
    handedToGraph.pop();
  }
  const { result, created } = run;
  if (result instanceof Promise) {
    // An async forward goes on creating tensors after this returns: ownership stays as it was.
    for (const item of created) track(item);
    return result;
  }
  // A Map of outputs counts as a record of them.
  const returned = returnedItems(result instanceof Map ? [...result.values()] : result);
  const needed = holdNeeded(returned, created, nested);
  const outer = handedToGraph.at(-1);
  for (const tensor of [...nested, ...needed]) outer?.add(tensor);
  for (const item of created) {
    if (returned.has(item)) track(item);
    else if (!needed.has(item as Tensor)) item.dispose();
  }
  return result;
}

/**
 * Walks the graph back from the returned tensors through this call's tensors, and makes every
 * node met hold its inputs that this call created. Returns those inputs.
 */
function holdNeeded(
  returned: Set<unknown>,
  created: Set<unknown>,
  nested: Set<Tensor>,
): Set<Tensor> {
  const needed = new Set<Tensor>();
  const visited = new Set<Tensor>();
  const stack: Tensor[] = [];
  for (const item of returned) {
    if (item instanceof Tensor) {
      visited.add(item);
      stack.push(item);
    }
  }
  while (stack.length > 0) {
    const node = stack.pop()!.node;
    if (!node || node.released) continue;
    for (const input of node.inputs) {
      const mine = created.has(input) && !returned.has(input);
      if (mine) {
        holdForGraph(node, input);
        needed.add(input);
      }
      if ((mine || nested.has(input)) && !visited.has(input)) {
        visited.add(input);
        stack.push(input);
      }
    }
  }
  return needed;
}
