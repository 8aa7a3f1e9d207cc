/**
 * The op tests in headless Chromium: the op families' own test files (forward and backward
 * against the float64 references of tests/nn/reference/, through `testOp`) bundled for the
 * browser (ops_entry.ts) and run in a page on Chromium's WebGPU adapter (SwiftShader here),
 * under both kernel policies (matmul and conv2d under the software policy only with
 * BROWSER_OP_TESTS=full). Each family is reported as a step. Skipped, with a printed reason,
 * when Chromium is not installed. BROWSER_OP_FAMILIES=unary,pow runs only those families.
 */
import { assert } from "../assert.ts";
import { bundleForBrowser, serveRoutes, skipWithoutChromium, withChromium } from "./chromium.ts";
import type { OpTestResult } from "./ops_entry.ts";

const HERE = new URL("./", import.meta.url);
const skip = skipWithoutChromium("browser op tests");
/**
 * Families whose software-policy run takes a minute in Chromium (a pipeline per shape, and
 * SwiftShader compiles slowly): run with BROWSER_OP_TESTS=full. The training tests run their
 * software-policy kernels on the study's shapes anyway.
 */
const SLOW_UNDER_SOFTWARE = ["matmul", "conv2d"];
const full = Deno.env.get("BROWSER_OP_TESTS") === "full";

Deno.test({
  name: "browser: the op families' tests pass in Chromium under both kernel policies",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const bundle = await bundleForBrowser(new URL("ops_entry.ts", HERE).pathname, {
      importMap: new URL("import_map.json", HERE).pathname,
    });
    const server = serveRoutes({
      "/": {
        body: '<!doctype html><meta charset="utf-8"><script type="module" src="/ops.js"></script>',
        type: "text/html",
      },
      "/ops.js": { body: bundle, type: "text/javascript" },
    });
    try {
      await withChromium(async (browser) => {
        const page = await browser.open(`${server.origin}/`);
        await page.waitFor("globalThis.opTests !== undefined", { timeoutMs: 30_000 });
        // BROWSER_OP_FAMILIES=unary,pow runs only those (while working on them).
        const only = Deno.env.get("BROWSER_OP_FAMILIES")?.split(",");
        const families = (await page.evaluate<string[]>("opTests.families"))
          .filter((family) => !only || only.includes(family));
        const adapter = await page.evaluate<{ description: string }>("opTests.adapter()");
        console.log(`${browser.version}, adapter: ${adapter.description}`);
        const failed: string[] = [];
        let passed = 0;
        for (const policy of ["hardware", "software"]) {
          for (const family of families) {
            if (policy === "software" && SLOW_UNDER_SOFTWARE.includes(family) && !full) {
              await t.step({
                name: `${policy}: ${family} (BROWSER_OP_TESTS=full)`,
                ignore: true,
                fn() {},
              });
              continue;
            }
            const start = Date.now();
            const results = await page.evaluate<OpTestResult[]>(
              `opTests.run(${JSON.stringify(family)}, ${JSON.stringify(policy)})`,
              { timeoutMs: 300_000 },
            );
            assert.ok(results.length > 0, `${family}: no tests registered`);
            await t.step(
              `${policy}: ${family} (${results.length} tests, ${Date.now() - start} ms)`,
              () => {
                const bad = results.filter((r) => r.outcome === "failed");
                passed += results.filter((r) => r.outcome === "passed").length;
                for (const r of bad) failed.push(`${policy} ${family}: ${r.name}: ${r.error}`);
                if (bad.length) {
                  throw new Error(bad.map((r) => `${r.name}: ${r.error}`).join("\n\n"));
                }
              },
            );
          }
        }
        console.log(`${passed} browser op tests passed, ${failed.length} failed`);
      });
    } finally {
      await server.close();
    }
  },
});
