/**
 * A browser stand-in for the part of the `Deno` global that the op test files use: `Deno.test`
 * registers each test in `registeredTests` (tagged with the family being imported) instead of
 * running it, and `Deno.env.get` reads the page's query string (so `?WGTORCH_KERNEL_POLICY=hardware`
 * works as the environment variable does). Installed only where there is no real `Deno`; the
 * browser entry (ops_entry.ts) imports this module first.
 *
 * @module
 */

/** A test registered by `Deno.test` in the page. */
export interface RegisteredTest {
  /** The op family (the test file) it came from. */
  family: string;
  /** The test's name. */
  name: string;
  /** Whether it asked to be ignored. */
  ignore: boolean;
  /** The test body. */
  fn: (context: TestContext) => unknown;
}

/** The part of Deno.TestContext the tests may use. */
export interface TestContext {
  /** The test's name. */
  name: string;
  /** Runs a sub-step right away. */
  step: (
    name: string | { name: string; fn: (t: TestContext) => unknown },
    fn?: (t: TestContext) => unknown,
  ) => Promise<boolean>;
}

/** Every test registered so far, in order. */
export const registeredTests: RegisteredTest[] = [];

let family = "";

/** Names the family whose test file is imported next. */
export function setFamily(name: string): void {
  family = name;
}

type TestFn = (context: TestContext) => unknown;
interface TestDefinition {
  name?: string;
  fn?: TestFn;
  ignore?: boolean;
  only?: boolean;
}

function register(a: string | TestDefinition | TestFn, b?: TestDefinition | TestFn, c?: TestFn) {
  let definition: TestDefinition;
  if (typeof a === "string") {
    definition = typeof b === "function" ? { name: a, fn: b } : { ...b, name: a, fn: c };
  } else if (typeof a === "function") {
    definition = typeof b === "object" ? { ...b, fn: a } : { name: a.name, fn: a };
  } else definition = a;
  if (!definition.fn) throw new Error(`Deno.test shim: test ${definition.name} has no function`);
  registeredTests.push({
    family,
    name: definition.name ?? "(unnamed)",
    ignore: definition.ignore ?? false,
    fn: definition.fn,
  });
}

/** A test context whose steps run at once. */
export function testContext(name: string): TestContext {
  return {
    name,
    step: async (step, fn) => {
      const [stepName, stepFn] = typeof step === "string" ? [step, fn!] : [step.name, step.fn];
      await stepFn(testContext(`${name} > ${stepName}`));
      return true;
    },
  };
}

const query = () =>
  typeof location === "undefined" ? new URLSearchParams() : new URLSearchParams(location.search);

if (!(globalThis as { Deno?: unknown }).Deno) {
  (globalThis as Record<string, unknown>).Deno = {
    test: register,
    build: { os: "browser" },
    env: {
      get: (name: string) => query().get(name) ?? undefined,
      set: () => {},
      toObject: () => Object.fromEntries(query()),
    },
  };
}
