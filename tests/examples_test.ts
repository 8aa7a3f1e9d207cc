// The README's examples run as written, and learn.
import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";

async function runExample(name: string, cwd: string): Promise<string> {
  const path = fromFileUrl(new URL(`../examples/${name}`, import.meta.url));
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `${name} failed:\n${text}\n${new TextDecoder().decode(stderr)}`);
  return text;
}

Deno.test("examples/tiny_network.ts trains the hand-built network (the loss falls below 0.1)", async () => {
  const out = await runExample("tiny_network.ts", Deno.cwd());
  const losses = [...out.matchAll(/loss (\d+\.\d+)/g)].map((m) => Number(m[1]));
  assert.equal(losses.length, 5, out);
  assert.ok(losses.at(-1)! < 0.1 && losses.at(-1)! < losses[0], out);
});

Deno.test("examples/train_cnn_bn.ts trains CNN-BN on FashionMNIST and saves safetensors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = await runExample("train_cnn_bn.ts", dir);
    const accuracy = Number(out.match(/test accuracy (\d\.\d+)/)?.[1]);
    assert.ok(accuracy > 0.75, out);
    const bytes = await Deno.readFile(`${dir}/cnn_bn.safetensors`);
    assert.ok(bytes.length > 8550 * 4, "the weights file holds every parameter");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("examples/custom_op.ts: its WGSL swish equals the composed ops, and sees a raw write", async () => {
  const out = await runExample("custom_op.ts", Deno.cwd());
  const swish = (v: number) => v / (1 + Math.exp(-1.5 * v));
  const printed = out.match(/swish\(x\) = \[([^\]]*)\]/)?.[1].split(", ").map(Number);
  assert.deepEqual(
    printed,
    Array.from({ length: 11 }, (_, i) => Number(swish(i / 2 - 2.5).toFixed(4))),
    out,
  );
  for (const what of ["forward", "gradient"]) {
    const difference = Number(out.match(new RegExp(`${what} difference (\\S+)`))?.[1]);
    assert.ok(difference < 1e-5, `${what}: ${out}`);
  }
  assert.match(out, new RegExp(`after writing 2s: swish\\(2\\) = ${swish(2).toFixed(4)}`), out);
});

Deno.test("examples/char_lstm.ts: the LSTM learns to predict the next character", async () => {
  const out = await runExample("char_lstm.ts", Deno.cwd());
  const losses = [...out.matchAll(/epoch \d+: loss (\d+\.\d+)/g)].map((m) => Number(m[1]));
  assert.equal(losses.length, 6, out);
  assert.ok(losses.at(-1)! < losses[0] / 4, out);
  const accuracy = Number(out.match(/final next-char accuracy (\d\.\d+)/)?.[1]);
  assert.ok(accuracy > 0.9, out);
});

Deno.test("examples/transformer_classifier.ts: the transformer learns whether A comes before B", async () => {
  const out = await runExample("transformer_classifier.ts", Deno.cwd());
  const losses = [...out.matchAll(/epoch \d+: loss (\d+\.\d+)/g)].map((m) => Number(m[1]));
  assert.equal(losses.length, 5, out);
  assert.ok(losses.at(-1)! < losses[0], out);
  const accuracy = Number(out.match(/final test accuracy (\d\.\d+)/)?.[1]);
  assert.ok(accuracy > 0.9, out);
});

Deno.test("examples/regression_mlp.ts learns the regression (val MSE < 0.02, a tenth of the untrained)", async () => {
  const out = await runExample("regression_mlp.ts", Deno.cwd());
  const untrained = Number(out.match(/untrained: val mse (\d+\.\d+)/)?.[1]);
  const final = Number(out.match(/final val mse (\d+\.\d+)/)?.[1]);
  assert.ok(final < 0.02 && final < untrained / 10, out);
  const best = Number(out.match(/best epoch (\d+)/)?.[1]);
  assert.ok(best >= 1, out);
});

Deno.test("examples/rgb_convnet.ts learns the brightest colour (val accuracy > 0.9)", async () => {
  const out = await runExample("rgb_convnet.ts", Deno.cwd());
  const accuracy = Number(out.match(/val accuracy (\d\.\d+)/)?.[1]);
  assert.ok(accuracy > 0.9, out);
  const rates = [...out.matchAll(/lr (\S+),/g)].map((m) => Number(m[1]));
  assert.ok(rates.length === 3 && rates[2] < rates[0] / 100, `OneCycleLR anneals: ${out}`);
});
