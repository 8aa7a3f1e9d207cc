/**
 * Small assertion helpers on top of node:assert (JSR's @std/assert is unreachable offline).
 */
import assert from "node:assert/strict";

/** Asserts that `fn` throws an error whose message matches `pattern`. */
export function assertThrows(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    if (!(error instanceof Error)) return false;
    if (!pattern.test(error.message)) {
      throw new assert.AssertionError({
        message: `error message ${JSON.stringify(error.message)} does not match ${pattern}`,
      });
    }
    return true;
  });
}

/** Asserts that the promise rejects with an error whose message matches `pattern`. */
export async function assertRejects(fn: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(fn, (error: unknown) => {
    if (!(error instanceof Error)) return false;
    if (!pattern.test(error.message)) {
      throw new assert.AssertionError({
        message: `error message ${JSON.stringify(error.message)} does not match ${pattern}`,
      });
    }
    return true;
  });
}

export { assert };
