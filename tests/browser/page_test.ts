/**
 * The training page (web/) in headless Chromium: served by web/serve.ts, it trains CNN-BN for
 * 200 steps of 64 FashionMNIST images (its quick mode) and shows a test accuracy above 0.7; a
 * screenshot (Page.captureScreenshot) is decoded and must not be blank; the weights it offers
 * for download load in `cli.ts evaluate` and in PyTorch, which both find the page's test
 * accuracy. Skipped, with a printed reason, without Chromium or a local FashionMNIST.
 *
 * `WGTORCH_WEB_SCREENSHOT=PATH` also writes the screenshot there (docs/figures/web.png).
 */
import { fileURLToPath } from "node:url";
import { assert } from "../assert.ts";
import { askTorchPath, pngStats, skipWithoutChromium, withChromium } from "./chromium.ts";
import { startWebServer, type WebServer } from "../../web/serve.ts";
import { loadFashionMnist } from "../../data/fashion_mnist.ts";
import { pixelsToFloat32 } from "../../data/dataset.ts";
import { decodeSafetensors } from "../../nn/safetensors.ts";
import { torchPython } from "../torch.ts";

const ROOT = new URL("../../", import.meta.url);
const skip = skipWithoutChromium("browser training page");
const STEPS = 200, BATCH = 64, TEST_IMAGES = 2000;

interface WebState {
  phase: string;
  adapter: string;
  steps: number;
  imagesPerSecond: number;
  trainLoss: number;
  testAccuracy: number | null;
  error: string | null;
}

Deno.test({
  name: "browser: the training page trains CNN-BN to > 0.7 test accuracy in 200 steps",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    let server: WebServer;
    try {
      server = await startWebServer({ download: false });
    } catch (error) {
      console.warn(`browser training page: no local FashionMNIST (${error}); skipped`);
      return;
    }
    const dir = await Deno.makeTempDir({ prefix: "wgtorch_web_test_" });
    try {
      await withChromium(async (browser) => {
        const started = Date.now();
        const page = await browser.open(
          `${server.url}?steps=${STEPS}&batch=${BATCH}&autostart=1&test=${TEST_IMAGES}`,
          { width: 960, height: 1040 },
        );
        const state = await page.waitFor<WebState>(
          "['done', 'error', 'stopped'].includes(webState.phase) && webState",
          { timeoutMs: 240_000, intervalMs: 1000 },
        );
        console.log(
          `${browser.version}, ${state.adapter}: ${state.steps} steps in ${
            ((Date.now() - started) / 1000).toFixed(1)
          } s, ${state.imagesPerSecond.toFixed(0)} img/s, test accuracy ${state.testAccuracy}`,
        );
        assert.equal(state.error, null, `the page failed: ${state.error}`);
        assert.equal(state.phase, "done");
        assert.equal(state.steps, STEPS);
        assert.ok(state.testAccuracy! > 0.7, `test accuracy ${state.testAccuracy} <= 0.7`);
        const wrong = await page.evaluate<number>(
          "document.querySelectorAll('#grid .wrong').length",
        );
        const cells = await page.evaluate<number>(
          "document.querySelectorAll('#grid figure').length",
        );
        assert.equal(cells, 24, "the grid shows 24 test images");
        assert.ok(wrong < cells, "some grid images are right");

        await t.step("the screenshot is not blank", async () => {
          const png = await page.screenshot();
          const stats = await pngStats(png);
          console.log(`screenshot: ${png.length} bytes, ${JSON.stringify(stats)}`);
          assert.deepEqual([stats.width, stats.height], [960, 1040]);
          assert.ok(stats.distinctColours > 100, `only ${stats.distinctColours} colours`);
          assert.ok(stats.nonBackground > 0.05, `${stats.nonBackground} of the pixels drawn`);
          const path = Deno.env.get("WGTORCH_WEB_SCREENSHOT");
          if (path) await Deno.writeFile(path, png);
        });

        const weights = `${dir}/web.safetensors`;
        const base64 = await page.evaluate<string>("webWeightsBase64()");
        await Deno.writeFile(weights, Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
        const decoded = decodeSafetensors(await Deno.readFile(weights));
        assert.equal(decoded.metadata["wgtorch.model"], JSON.stringify({ model: "cnn-bn" }));

        await t.step("cli.ts evaluate loads the downloaded weights", async () => {
          const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "-A",
              "cli.ts",
              "evaluate",
              "--weights",
              weights,
              "--offline",
              "--test-limit",
              String(TEST_IMAGES),
              "--json",
            ],
            cwd: ROOT,
            stdout: "piped",
            stderr: "piped",
          }).output();
          assert.equal(code, 0, new TextDecoder().decode(stderr));
          const summary = JSON.parse(new TextDecoder().decode(stdout));
          console.log(`cli.ts evaluate: accuracy ${summary.accuracy} on ${summary.images}`);
          assert.equal(summary.images, TEST_IMAGES);
          assert.ok(
            Math.abs(summary.accuracy - state.testAccuracy!) <= 0.005,
            `evaluate's accuracy ${summary.accuracy} vs the page's ${state.testAccuracy}`,
          );
        });

        await t.step({
          name: "PyTorch loads the downloaded weights",
          ignore: torchPython === null,
          fn: async () => {
            const { test } = await loadFashionMnist({ download: false, progress: "none" });
            const input = `${dir}/input.f32`, output = `${dir}/output.f32`;
            const pixels = pixelsToFloat32(test.images.subarray(0, TEST_IMAGES * 784));
            await Deno.writeFile(input, new Uint8Array(pixels.buffer));
            await askTorchPath(torchPython!, [
              fileURLToPath(new URL("tests/pytorch/interop.py", ROOT)),
              "load",
              "cnn-bn",
              "64",
              weights,
              input,
              output,
            ]);
            const logProbs = new Float32Array((await Deno.readFile(output)).buffer);
            let correct = 0;
            for (let i = 0; i < TEST_IMAGES; i++) {
              const row = logProbs.subarray(i * 10, i * 10 + 10);
              if (row.indexOf(Math.max(...row)) === test.labels[i]) correct++;
            }
            console.log(`PyTorch: accuracy ${correct / TEST_IMAGES}`);
            assert.ok(
              Math.abs(correct / TEST_IMAGES - state.testAccuracy!) <= 0.005,
              `PyTorch's accuracy ${correct / TEST_IMAGES} vs the page's ${state.testAccuracy}`,
            );
          },
        });
      });
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
