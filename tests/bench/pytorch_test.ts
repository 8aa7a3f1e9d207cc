// The bench's PyTorch side: the script runs the requested rows and names them as wgtorch's rows,
// so that the ratios pair the right numbers. Skipped with a message where torch is missing.
import { benchTable } from "../../bench/mod.ts";
import { findTorchPython, PytorchServer, pytorchThroughput } from "../../bench/pytorch.ts";
import { assert } from "../assert.ts";

const python = await findTorchPython();
if (!python) console.warn("bench_pytorch_test: PyTorch is not importable; skipped");

Deno.test({
  name: "pytorch_bench.py times the requested rows under wgtorch's row names",
  ignore: !python,
  fn: async () => {
    const report = await pytorchThroughput(python!, {
      rows: [
        { kind: "train", model: "mlp", batch: 4 },
        { kind: "train", model: "cnn-bn", batch: 4 },
        { kind: "eval", model: "mlp", batch: 128 },
        { kind: "eval", model: "cnn-bn", batch: 128 },
      ],
      windows: 1,
      threads: 1,
    });
    assert.deepEqual(report.rows.map((r) => r.what), [
      "train mlp batch 4",
      "train cnn-bn batch 4",
      "eval mlp batch 128",
      "eval cnn-bn batch 128",
    ]);
    for (const row of report.rows) assert.ok(row.imagesPerSecond > 0, row.what);
    assert.equal(report.threads, 1);
    assert.equal(report.device, "cpu");
    assert.match(report.torch, /^\d+\.\d+/);
  },
});

Deno.test({
  name: "pytorch_bench.py runs the rows on the GPU with device cuda, or says CUDA is missing",
  ignore: !python,
  fn: async () => {
    const spec = {
      rows: [{ kind: "train" as const, model: "cnn", batch: 4 }],
      windows: 1,
      threads: 1,
      device: "cuda" as const,
    };
    let report;
    try {
      report = await pytorchThroughput(python!, spec);
    } catch (error) {
      assert.match(String(error), /CUDA/);
      return;
    }
    assert.notEqual(report.device, "cpu");
    assert.ok(report.rows[0].imagesPerSecond > 0);
  },
});

Deno.test({
  name: "pytorch_bench.py --serve times one window of a row at a time",
  ignore: !python,
  fn: async () => {
    const server = PytorchServer.start(python!, 1);
    try {
      const info = await server.info();
      assert.equal(info.threads, 1);
      assert.match(info.torch, /^\d+\.\d+/);
      for (
        const row of [{ kind: "train", model: "cnn", batch: 4 }, {
          kind: "eval",
          model: "mlp",
          batch: 8,
        }] as const
      ) {
        await server.setup(row);
        for (let w = 0; w < 2; w++) {
          const window = await server.window();
          assert.ok(window.imagesPerSecond > 0 && window.cpuMsPerStep > 0, row.kind);
        }
      }
    } finally {
      await server.close();
    }
  },
});

Deno.test("benchTable puts PyTorch's figure and both ratios beside wgtorch's", () => {
  const table = benchTable([
    {
      what: "train cnn batch 32",
      unit: "img/s",
      wgtorch: 3000,
      tfjs: 100,
      ratio: 30,
      pytorch: 2000,
      ratioPytorch: 1.5,
      dispatchesPerStep: 41,
    },
    { what: "matmul 8x8 · 8x8", unit: "GFLOP/s", wgtorch: 1.234 },
  ]);
  const lines = table.split("\n");
  assert.equal(
    lines[2],
    "| train cnn batch 32 | img/s | 3,000 | 100 | 2,000 | 30.00x | 1.50x | 41 |",
  );
  assert.equal(lines[3], "| matmul 8x8 · 8x8 | GFLOP/s | 1.23 | — | — | — | — | — |");
});
