/**
 * Ten training steps of each study model (mlp, cnn, cnn-bn) on the same seed and the same
 * generated batch, in Deno (this process, on its adapter) and in headless Chromium (its WebGPU
 * adapter): the losses agree within 1e-5. Skipped, with a printed reason, when Chromium is not
 * installed.
 */
import { assert } from "../assert.ts";
import { bundleForBrowser, serveRoutes, skipWithoutChromium, withChromium } from "./chromium.ts";
import { trainSteps, type TrainStepsOptions } from "./train_steps.ts";
import { describeAdapter, init } from "../../nn/gpu/device.ts";
import type { ModelName } from "../../nn/models.ts";

const HERE = new URL("./", import.meta.url);
const skip = skipWithoutChromium("browser training equivalence");
const MODELS: ModelName[] = ["mlp", "cnn", "cnn-bn"];
const TOLERANCE = 1e-5;

Deno.test({
  name: "browser: 10 training steps of mlp, cnn and cnn-bn give Deno's losses within 1e-5",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const bundle = await bundleForBrowser(new URL("train_entry.ts", HERE).pathname);
    const server = serveRoutes({
      "/": {
        body: '<!doctype html><meta charset="utf-8"><script type="module" src="/t.js"></script>',
        type: "text/html",
      },
      "/t.js": { body: bundle, type: "text/javascript" },
    });
    try {
      await withChromium(async (browser) => {
        const page = await browser.open(`${server.origin}/`);
        await page.waitFor("globalThis.trainSteps !== undefined", { timeoutMs: 30_000 });
        const deno = describeAdapter((await init()).adapter);
        const web = await page.evaluate<string>("adapterLine()");
        console.log(`Deno: ${deno}\n${browser.version}: ${web}`);
        for (const model of MODELS) {
          const options: TrainStepsOptions = { model, seed: 7, batch: 16, steps: 10 };
          const started = Date.now();
          const inDeno = await trainSteps(options);
          const denoMs = Date.now() - started;
          const inBrowser = await page.evaluate<number[]>(
            `trainSteps(${JSON.stringify(options)})`,
            { timeoutMs: 180_000 },
          );
          const browserMs = Date.now() - started - denoMs;
          const worst = Math.max(...inDeno.map((v, i) => Math.abs(v - inBrowser[i])));
          await t.step(
            `${model}: worst difference ${
              worst.toExponential(2)
            } (Deno ${denoMs} ms, browser ${browserMs} ms)`,
            () => {
              assert.equal(inBrowser.length, 10);
              assert.ok(
                inDeno.every((v) => Number.isFinite(v)) && inDeno[9] < inDeno[0],
                `${model}: Deno's losses should be finite and fall: ${inDeno}`,
              );
              assert.ok(
                worst <= TOLERANCE,
                `${model}: losses differ by ${worst} > ${TOLERANCE}\nDeno:    ${inDeno}\nbrowser: ${inBrowser}`,
              );
            },
          );
        }
      });
    } finally {
      await server.close();
    }
  },
});
