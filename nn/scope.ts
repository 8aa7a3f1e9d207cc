/**
 * Ownership of GPU memory: `tidy(fn)` disposes every tensor created while `fn` ran, except the
 * ones it returns and the ones passed to `keep()`.
 *
 * @module
 */

/** Anything that holds GPU memory and can give it back. */
export interface Disposable {
  /** Gives the memory back; safe to call twice. */
  dispose(): void;
  /** True once disposed. */
  readonly isDisposed: boolean;
}

const scopes: Set<Disposable>[] = [];

/** Called by every new tensor: the innermost open `tidy` will own it. */
export function track(item: Disposable): void {
  scopes[scopes.length - 1]?.add(item);
}

/** Takes `item` out of every open `tidy`, so that it outlives them. Returns `item`. */
export function keep<T extends Disposable>(item: T): T {
  for (const scope of scopes) scope.delete(item);
  return item;
}

/** What a tidy function may return: tensors in any arrays or plain objects are kept. */
export type TidyResult = unknown;

function collect(value: unknown, into: Set<Disposable>, depth = 0): void {
  if (value === null || typeof value !== "object" || depth > 4) return;
  if ("dispose" in value && "isDisposed" in value) {
    into.add(value as Disposable);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) collect(item, into, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const item of Object.values(value)) collect(item, into, depth + 1);
  }
}

/** The disposables in a tidy function's result (directly, or inside arrays and plain objects). */
export function returnedItems(value: unknown): Set<Disposable> {
  const returned = new Set<Disposable>();
  collect(value, returned);
  return returned;
}

/**
 * Runs `fn` in a scope of its own and hands back what it created and did not `keep()`: the
 * caller must dispose each item or `track()` it into the enclosing scope. If `fn` throws, what it
 * created is disposed.
 */
export function ownCreated<T>(fn: () => T): { result: T; created: Set<Disposable> } {
  const created = new Set<Disposable>();
  scopes.push(created);
  try {
    return { result: fn(), created };
  } catch (error) {
    for (const item of created) item.dispose();
    throw error;
  } finally {
    scopes.pop();
  }
}

/**
 * Runs `fn` and disposes every tensor it created, except what it returns (tensors directly, or
 * inside arrays and plain objects), which moves to the enclosing scope. `fn` must not be async:
 * tensors created after an `await` would escape the scope.
 */
export function tidy<T extends TidyResult>(fn: () => T): T {
  const { result, created } = ownCreated(fn);
  if (result instanceof Promise) {
    throw new Error("tidy(fn): fn returned a Promise; tidy only works with synchronous functions");
  }
  const returned = returnedItems(result);
  for (const item of created) {
    if (returned.has(item)) track(item);
    else item.dispose();
  }
  return result;
}
