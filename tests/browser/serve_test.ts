/**
 * web/serve.ts without a browser: the page's module bundles for the browser and imports
 * nothing, and the server serves the page, the bundle and the four IDX files (when FashionMNIST
 * is on this machine; else that part says it was skipped).
 */
import { assert } from "../assert.ts";
import { bundleApp, startWebServer, type WebServer } from "../../web/serve.ts";

Deno.test("web/app.ts bundles for the browser and the bundle imports nothing", async () => {
  const bundle = await bundleApp();
  assert.ok(bundle.length > 50_000, `a bundle of ${bundle.length} characters is too small`);
  assert.deepEqual(bundle.match(/^\s*import\s.*from\s*["'][^"']+["']/gm) ?? [], []);
  assert.ok(!/["']node:/.test(bundle), "no node: module in the bundle");
});

Deno.test({
  name: "web/serve.ts serves the page, its module and FashionMNIST's four files",
  sanitizeResources: false,
  fn: async () => {
    let server: WebServer;
    try {
      server = await startWebServer({ download: false });
    } catch (error) {
      console.warn(`web/serve.ts: no local FashionMNIST (${error}); skipped`);
      return;
    }
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await (await fetch(server.url)).text();
      assert.match(page, /<script type="module" src="app.js"><\/script>/);
      const app = await fetch(new URL("app.js", server.url));
      assert.match(app.headers.get("content-type") ?? "", /javascript/);
      await app.body?.cancel();
      for (const prefix of ["train", "t10k"]) {
        for (const kind of ["images-idx3", "labels-idx1"]) {
          const response = await fetch(new URL(`data/${prefix}-${kind}-ubyte.gz`, server.url));
          assert.equal(response.status, 200);
          const head = new Uint8Array(await response.arrayBuffer()).subarray(0, 2);
          assert.deepEqual([...head], [0x1f, 0x8b], "gzip");
        }
      }
      const missing = await fetch(new URL("data/nothing.gz", server.url));
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
    } finally {
      await server.close();
    }
  },
});
