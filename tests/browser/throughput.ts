/**
 * Training img/s of the study's models in Deno and in headless Chromium, measured in one go on
 * the same seeded batch (tests/browser/train_steps.ts): not a test, a measurement.
 *
 * ```sh
 * deno run -A tests/browser/throughput.ts [--models cnn-bn,cnn] [--batch 64] [--steps 30] \
 *   [--browser-policy software|hardware]
 * ```
 *
 * @module
 */
import { bundleForBrowser, serveRoutes, withChromium } from "./chromium.ts";
import { type TrainStepsOptions, trainThroughput } from "./train_steps.ts";
import { describeAdapter, init } from "../../nn/gpu/device.ts";
import type { ModelName } from "../../nn/models.ts";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] ? Deno.args[i + 1] : fallback;
}

if (import.meta.main) {
  const models = flag("models", "cnn-bn").split(",") as ModelName[];
  const batch = Number(flag("batch", "64")), steps = Number(flag("steps", "30"));
  const bundle = await bundleForBrowser(new URL("train_entry.ts", import.meta.url).pathname);
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
      await page.waitFor("globalThis.trainThroughput !== undefined", { timeoutMs: 30_000 });
      const policy = flag("browser-policy", "");
      if (policy) await page.evaluate(`setKernelPolicy(${JSON.stringify(policy)})`);
      console.log(`Deno ${Deno.version.deno}: ${describeAdapter((await init()).adapter)}`);
      console.log(`${browser.version}: ${await page.evaluate<string>("adapterLine()")}`);
      for (const model of models) {
        const options: TrainStepsOptions = { model, seed: 0, batch, steps };
        const deno = await trainThroughput(options);
        const web = await page.evaluate<number>(`trainThroughput(${JSON.stringify(options)})`, {
          timeoutMs: 300_000,
        });
        console.log(
          `${model}, batch ${batch}, ${steps} steps: Deno ${deno.toFixed(0)} img/s, ` +
            `Chromium ${web.toFixed(0)} img/s${policy ? ` (${policy} policy)` : ""}`,
        );
      }
    });
  } finally {
    await server.close();
  }
}
