// Exit: shutdown() destroys the device (idempotent; init() afterwards makes a new one), and the CLI
// calls it before every exit, so that no lavapipe thread is at work during exit() (which crashed
// Deno with SIGSEGV, exit code 139, in about 1.5% of error exits under load).
import assert from "node:assert/strict";
import { join } from "node:path";
import { memoryStats } from "../../nn/gpu/buffer_pool.ts";
import { gpu, init } from "../../nn/gpu/device.ts";
import { cnnBn } from "../../nn/models.ts";
import { relu } from "../../nn/ops/elementwise.ts";
import { shutdown } from "../../nn/shutdown.ts";
import { tensor } from "../../nn/tensor.ts";
import { saveWeights } from "../../train/checkpoint.ts";
import { assertThrows } from "../assert.ts";
import { ROOT } from "../cli_fixtures.ts";
import { gpuReady } from "../testing.ts";

await gpuReady();

Deno.test("shutdown destroys the device, can be called twice, and init() makes a new one", async () => {
  const x = tensor([-1, 2, -3, 4]);
  const y = relu(x);
  assert.deepEqual([...await y.toArray()], [0, 2, 0, 4]);
  relu(y); // encoded, never submitted: dropped
  await Promise.all([shutdown(), shutdown()]);
  await shutdown();
  assertThrows(() => gpu(), /call `await init\(\)`/);
  assertThrows(() => tensor([1]), /call `await init\(\)`/);
  await init();
  x.dispose(); // its buffer went with the old device: not pooled for the new one
  y.dispose();
  assert.equal(memoryStats().liveBuffers, 0);
  assert.equal(memoryStats().pooledBytes, 0);
  const z = relu(tensor([-5, 6]));
  assert.deepEqual([...await z.toArray()], [0, 6]);
  z.dispose();
});

Deno.test("every error exit of the CLI has exit code 1 (48 runs, 8 at a time): no SIGSEGV at exit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wgtorch_exit_" });
  try {
    const weights = join(dir, "weights.safetensors");
    await saveWeights(weights, cnnBn());
    const run = () =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(ROOT, "cli.ts"), "evaluate", "--weights", weights, "--data-dir"]
          .concat([join(dir, "nonexistent"), "--no-verify"]),
        cwd: ROOT,
        stdout: "null",
        stderr: "null",
        env: { NO_COLOR: "1" },
      }).output().then((output) => output.code);
    const codes: number[] = [];
    for (let round = 0; round < 6; round++) {
      codes.push(...await Promise.all(Array.from({ length: 8 }, run)));
    }
    assert.deepEqual(codes.filter((code) => code !== 1), [], `exit codes: ${codes.join(" ")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
