// Weights move between wgtorch and PyTorch through safetensors, in both directions, for each of
// the study's models: PyTorch loads a wgtorch file into the matching nn.Module (strict) and
// computes the same log-probabilities, and the reverse. Needs Debian's python3-torch (.ci/run
// installs it); skipped with a message when PyTorch is not importable.
import { fileURLToPath } from "node:url";
import { createModel, MODEL_NAMES } from "../../models/mod.ts";
import { nllLoss } from "../../nn/ops/softmax.ts";
import { noGrad } from "../../nn/autograd.ts";
import { Rng } from "../../nn/random.ts";
import { loadSafetensors, saveSafetensors } from "../../nn/safetensors.ts";
import { tidy } from "../../nn/scope.ts";
import { tensor } from "../../nn/tensor.ts";
import { SGD } from "../../train/optim/sgd.ts";
import { Adam } from "../../train/optim/adam.ts";
import { assertClose, gpuReady, randomArray } from "../testing.ts";

const script = fileURLToPath(new URL("../pytorch/interop.py", import.meta.url));

async function findPython(): Promise<string | null> {
  for (const python of ["/usr/bin/python3", "python3"]) {
    try {
      const { code } = await new Deno.Command(python, {
        args: ["-c", "import torch"],
        stderr: "null",
      })
        .output();
      if (code === 0) return python;
    } catch { /* not installed */ }
  }
  return null;
}

const python = await findPython();
if (!python) {
  console.warn(
    "pytorch_interop_test: PyTorch is not importable (apt-get install python3-torch); skipped",
  );
}
await gpuReady();

async function runPython(args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(python!, {
    args: [script, ...args],
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (code !== 0) {
    throw new Error(`interop.py ${args.join(" ")} failed:\n${new TextDecoder().decode(stderr)}`);
  }
}

const BATCH = 6;
const input = Float32Array.from(randomArray(BATCH * 784, 3, 0, 1));

function evalLogProbs(
  model: ReturnType<typeof createModel>,
  training = false,
): Promise<Float32Array> {
  model.train(training);
  const out = tidy(() => noGrad(() => model.forward(tensor(input, [BATCH, 1, 28, 28]))));
  return out.toArray().finally(() => out.dispose());
}

for (const name of MODEL_NAMES) {
  Deno.test({
    name: `${name}: wgtorch → safetensors → PyTorch, and PyTorch → safetensors → wgtorch`,
    ignore: python === null,
    async fn() {
      const dir = await Deno.makeTempDir();
      try {
        const inputPath = `${dir}/input.f32`;
        await Deno.writeFile(inputPath, new Uint8Array(input.buffer));
        // wgtorch → PyTorch, after a few training steps so that running statistics have moved.
        const model = createModel(name, { rng: new Rng(5), l1: 64 });
        const optimizer = new SGD(model.parameters(), { lr: 0.05 });
        for (let step = 0; step < 3; step++) {
          tidy(() => {
            optimizer.zeroGrad();
            const x = tensor(Float32Array.from(randomArray(16 * 784, 10 + step, 0, 1)), [
              16,
              1,
              28,
              28,
            ]);
            const y = tensor(Int32Array.from({ length: 16 }, (_, i) => i % 10), [16], {
              dtype: "i32",
            });
            nllLoss(model.forward(x), y).backward();
            optimizer.step();
          });
        }
        optimizer.zeroGrad();
        const ours = await evalLogProbs(model);
        await saveSafetensors(`${dir}/ours.safetensors`, model.stateDict(), { model: name });
        await runPython([
          "load",
          name,
          "64",
          `${dir}/ours.safetensors`,
          inputPath,
          `${dir}/theirs.f32`,
        ]);
        const theirs = new Float32Array((await Deno.readFile(`${dir}/theirs.f32`)).buffer);
        assertClose(
          theirs,
          ours,
          { atol: 2e-4, rtol: 1e-4 },
          "PyTorch's log-probs from wgtorch's weights",
        );

        // PyTorch → wgtorch (its file includes num_batches_tracked as I64).
        await runPython([
          "save",
          name,
          "64",
          `${dir}/torch.safetensors`,
          inputPath,
          `${dir}/torch_out.f32`,
        ]);
        const expected = new Float32Array((await Deno.readFile(`${dir}/torch_out.f32`)).buffer);
        const loaded = await loadSafetensors(`${dir}/torch.safetensors`);
        const fresh = createModel(name, { rng: new Rng(99), l1: 64 });
        fresh.loadStateDict(loaded.tensors);
        for (const t of Object.values(loaded.tensors)) t.dispose();
        assertClose(
          await evalLogProbs(fresh),
          expected,
          { atol: 2e-4, rtol: 1e-4 },
          "wgtorch's log-probs from PyTorch's weights",
        );
        model.dispose();
        fresh.dispose();
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

// Training matches PyTorch step for step: from the same weights, 4 steps on the same batches
// (the MLP in eval mode so that dropout is off on both sides, the CNNs in training mode with
// batch statistics). SGD (lr 0.05, momentum 0.9) must give the same weights and running
// statistics. Adam (lr 0.01) must give a model with the same outputs: its weights are compared
// through the log-probabilities, because Adam divides by the gradient's running scale, so a
// weight whose true gradient is zero (a convolution bias followed by batch norm, which removes
// it) moves by +-lr on rounding noise in either framework. Four steps, because two frameworks
// drift apart by rounding alone: a max-pool window whose top two values differ by less than
// the rounding error sends its gradient to a different pixel (seen at step 7 of CNN-BN: the
// conv1 weights jump from 5e-7 to 1.5e-4 apart in that one step while the rest stay at 1e-7).
for (const name of MODEL_NAMES) {
  for (const optimizerName of ["sgd", "adam"] as const) {
    Deno.test({
      name: `${name}: 4 ${
        optimizerName === "sgd" ? "SGD" : "Adam"
      } steps equal PyTorch's from the same weights and batches`,
      ignore: python === null,
      async fn() {
        const dir = await Deno.makeTempDir();
        try {
          const steps = 4, batch = 16;
          const model = createModel(name, { rng: new Rng(11), l1: 64 });
          await saveSafetensors(`${dir}/start.safetensors`, model.stateDict(), { model: name });
          const data = new Float32Array(steps * batch * 785);
          const rng = new Rng(21);
          for (let step = 0; step < steps; step++) {
            const base = step * batch * 785;
            for (let i = 0; i < batch * 784; i++) data[base + i] = rng.next();
            for (let i = 0; i < batch; i++) data[base + batch * 784 + i] = rng.int(10);
          }
          await Deno.writeFile(`${dir}/batches.f32`, new Uint8Array(data.buffer));
          const optimizer = optimizerName === "sgd"
            ? new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 })
            : new Adam(model.parameters(), { lr: 0.01 });
          model.train(name !== "mlp");
          for (let step = 0; step < steps; step++) {
            const base = step * batch * 785;
            tidy(() => {
              optimizer.zeroGrad();
              const x = tensor(data.slice(base, base + batch * 784), [batch, 1, 28, 28]);
              const y = tensor(
                Int32Array.from(data.slice(base + batch * 784, base + batch * 785)),
                [batch],
                { dtype: "i32" },
              );
              nllLoss(model.forward(x), y).backward();
              optimizer.step();
            });
          }
          optimizer.zeroGrad();
          await runPython([
            optimizerName,
            name,
            "64",
            `${dir}/start.safetensors`,
            `${dir}/batches.f32`,
            `${dir}/end.safetensors`,
          ]);
          const theirs = await loadSafetensors(`${dir}/end.safetensors`);
          if (optimizerName === "sgd") {
            for (const [key, ours] of Object.entries(model.stateDict())) {
              assertClose(await ours.toArray(), await theirs.tensors[key].toArray(), {
                atol: 2e-5,
                rtol: 1e-4,
              }, key);
            }
          } else {
            const twin = createModel(name, { rng: new Rng(1), l1: 64 });
            twin.loadStateDict(theirs.tensors);
            // Training mode for the batch-norm models: batch statistics cancel the conv biases
            // (running means carry them, and Adam moves them on noise).
            const training = name === "cnn-bn" || name === "tuning-cnn";
            assertClose(await evalLogProbs(model, training), await evalLogProbs(twin, training), {
              atol: 1e-3,
              rtol: 1e-3,
            }, "log-probs after Adam");
            twin.dispose();
          }
          for (const t of Object.values(theirs.tensors)) t.dispose();
          optimizer.dispose();
          model.dispose();
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    });
  }
}
