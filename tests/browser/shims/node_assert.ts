/**
 * A browser stand-in for `node:assert` and `node:assert/strict` (the strict semantics), so that
 * the op tests and their helpers bundle for the browser unchanged: the functions the tests use.
 * `tests/browser/import_map.json` maps both specifiers here.
 *
 * @module
 */

/** The error every failed assertion throws. */
export class AssertionError extends Error {
  /** What was found, when given. */
  actual?: unknown;
  /** What was expected, when given. */
  expected?: unknown;

  /** Like Node's: `{ message, actual, expected }`. */
  constructor(options: { message?: string; actual?: unknown; expected?: unknown } = {}) {
    super(options.message ?? "assertion failed");
    this.name = "AssertionError";
    this.actual = options.actual;
    this.expected = options.expected;
  }
}

type Message = string | Error | undefined;

function fail(message: Message, fallback: string, actual?: unknown, expected?: unknown): never {
  if (message instanceof Error) throw message;
  throw new AssertionError({
    message: message ? `${message}\n${fallback}` : fallback,
    actual,
    expected,
  });
}

function show(value: unknown): string {
  try {
    return JSON.stringify(
      value,
      (_k, v) =>
        typeof v === "bigint" ? `${v}n` : ArrayBuffer.isView(v) ? Array.from(v as never) : v,
    );
  } catch {
    return String(value);
  }
}

/** Structural equality with Object.is on primitives (strict deepEqual). */
export function isDeepStrictEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  if (a instanceof RegExp) return String(a) === String(b);
  if (a instanceof Map || a instanceof Set) {
    const x = [...a.entries()], y = [...(b as Map<unknown, unknown>).entries()];
    return x.length === y.length && isDeepStrictEqual(x, y);
  }
  if (ArrayBuffer.isView(a)) {
    const x = a as unknown as ArrayLike<unknown>, y = b as unknown as ArrayLike<unknown>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
    return true;
  }
  const keysA = Object.keys(a), keysB = Object.keys(b as object);
  if (keysA.length !== keysB.length) return false;
  for (const key of keysA) {
    if (!Object.prototype.hasOwnProperty.call(b, key)) return false;
    if (
      !isDeepStrictEqual(
        (a as Record<string, unknown>)[key],
        (b as Record<string, unknown>)[key],
      )
    ) return false;
  }
  return true;
}

/** Fails unless `value` is truthy. */
export function ok(value: unknown, message?: Message): asserts value {
  if (!value) fail(message, `expected a truthy value, got ${show(value)}`, value, true);
}

/** Fails unless Object.is(actual, expected). */
export function equal(actual: unknown, expected: unknown, message?: Message): void {
  if (!Object.is(actual, expected)) {
    fail(message, `${show(actual)} !== ${show(expected)}`, actual, expected);
  }
}

/** Fails when Object.is(actual, expected). */
export function notEqual(actual: unknown, expected: unknown, message?: Message): void {
  if (Object.is(actual, expected)) fail(message, `${show(actual)} === ${show(expected)}`);
}

/** Fails unless the two are structurally equal (strictly). */
export function deepEqual(actual: unknown, expected: unknown, message?: Message): void {
  if (!isDeepStrictEqual(actual, expected)) {
    fail(message, `${show(actual)} is not deep-equal to ${show(expected)}`, actual, expected);
  }
}

/** Fails when the two are structurally equal (strictly). */
export function notDeepEqual(actual: unknown, expected: unknown, message?: Message): void {
  if (isDeepStrictEqual(actual, expected)) {
    fail(message, `${show(actual)} is deep-equal to ${show(expected)}`);
  }
}

/** Fails unless `string` matches `pattern`. */
export function match(string: string, pattern: RegExp, message?: Message): void {
  if (!pattern.test(string)) fail(message, `${show(string)} does not match ${pattern}`);
}

type ErrorCheck =
  | RegExp
  | ((error: unknown) => boolean)
  | (new (...args: never[]) => unknown)
  | Record<string, unknown>;

function check(error: unknown, expected: ErrorCheck | undefined, message: Message): void {
  if (expected === undefined) return;
  if (expected instanceof RegExp) {
    const text = String(error); // as Node: "Error: message"
    if (!expected.test(text)) fail(message, `error ${show(text)} does not match ${expected}`);
  } else if (typeof expected === "object") {
    for (const [key, want] of Object.entries(expected)) {
      const got = (error as Record<string, unknown>)?.[key];
      const same = want instanceof RegExp ? want.test(String(got)) : isDeepStrictEqual(got, want);
      if (!same) {
        fail(
          message,
          `error's ${key} ${show(got)} is not ${want instanceof RegExp ? want : show(want)}`,
        );
      }
    }
  } else if (expected.prototype !== undefined && error instanceof (expected as never)) {
    return;
  } else if ((expected as (error: unknown) => boolean)(error) !== true) {
    fail(message, `the error did not pass the check: ${error}`);
  }
}

/** Fails unless `fn` throws (an error passing `expected`, when given). */
export function throws(fn: () => unknown, expected?: ErrorCheck | Message, message?: Message) {
  if (typeof expected === "string") [message, expected] = [expected, undefined];
  try {
    fn();
  } catch (error) {
    check(error, expected as ErrorCheck | undefined, message);
    return;
  }
  fail(message, "missing expected exception");
}

/** Fails unless the promise (or `fn()`) rejects (with an error passing `expected`). */
export async function rejects(
  fn: Promise<unknown> | (() => Promise<unknown>),
  expected?: ErrorCheck | Message,
  message?: Message,
): Promise<void> {
  if (typeof expected === "string") [message, expected] = [expected, undefined];
  try {
    await (typeof fn === "function" ? fn() : fn);
  } catch (error) {
    check(error, expected as ErrorCheck | undefined, message);
    return;
  }
  fail(message, "missing expected rejection");
}

/** The strict `assert`: callable as `assert(value)`, with the functions as properties. */
const assert: typeof ok & {
  ok: typeof ok;
  equal: typeof equal;
  strictEqual: typeof equal;
  notEqual: typeof notEqual;
  notStrictEqual: typeof notEqual;
  deepEqual: typeof deepEqual;
  deepStrictEqual: typeof deepEqual;
  notDeepEqual: typeof notDeepEqual;
  notDeepStrictEqual: typeof notDeepEqual;
  match: typeof match;
  throws: typeof throws;
  rejects: typeof rejects;
  AssertionError: typeof AssertionError;
  strict: unknown;
} = Object.assign((value: unknown, message?: Message) => ok(value, message), {
  ok,
  equal,
  strictEqual: equal,
  notEqual,
  notStrictEqual: notEqual,
  deepEqual,
  deepStrictEqual: deepEqual,
  notDeepEqual,
  notDeepStrictEqual: notDeepEqual,
  match,
  throws,
  rejects,
  AssertionError,
  strict: undefined as unknown,
}) as never;
assert.strict = assert;

export { deepEqual as deepStrictEqual, equal as strictEqual, notEqual as notStrictEqual };
export const strict: typeof assert = assert;
export default assert;
