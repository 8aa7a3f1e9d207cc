/**
 * The PyTorch CPU side of the bench: runs `pytorch_bench.py` in a subprocess (Debian's
 * `python3-torch`) with the same models, batch sizes, optimizer, windows and thread count as
 * wgtorch's rows, each row right after wgtorch's (this machine's speed drifts by tens of percent
 * over minutes, so rows measured far apart would compare two machines).
 *
 * @module
 */

import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("./pytorch_bench.py", import.meta.url));

/** One PyTorch row, named as the wgtorch row it sits beside. */
export interface PytorchRow {
  /** E.g. `train cnn-bn batch 128`. */
  what: string;
  /** Images per second: median over the timed windows. */
  imagesPerSecond: number;
  /** Each window's images per second. */
  windows: number[];
  /** Process CPU milliseconds per step. */
  cpuMsPerStep: number;
}

/** One row to time: a training step or an evaluation forward of a model at a batch size. */
export interface PytorchRowSpec {
  /** Training (Adam step) or evaluation (forward, no grad). */
  kind: "train" | "eval";
  /** One of the study's models: `mlp`, `cnn`, `cnn-bn`. */
  model: string;
  /** Images per step. */
  batch: number;
}

/** What the PyTorch run reports about itself, and its rows. */
export interface PytorchReport {
  /** The Python that ran it. */
  python: string;
  /** `torch.__version__`. */
  torch: string;
  /** Intra-op threads PyTorch used. */
  threads: number;
  /** The BLAS shared libraries the process loaded (OpenBLAS, or the slow reference BLAS). */
  blas: string[];
  /** OpenBLAS core-type override in the environment, if any (it can slow OpenBLAS down). */
  openblasCoretype: string | null;
  /** Where the rows ran: "cpu", or the GPU's name (`device: "cuda"`, `pytorchThroughput` only). */
  device: string;
  /** The rows. */
  rows: PytorchRow[];
}

/** The first Python that can `import torch` (Debian's `/usr/bin/python3` first), or null. */
export async function findTorchPython(): Promise<string | null> {
  for (const python of ["/usr/bin/python3", "python3"]) {
    try {
      const { code } = await new Deno.Command(python, {
        args: ["-c", "import torch"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (code === 0) return python;
    } catch { /* not installed */ }
  }
  return null;
}

/**
 * Runs the PyTorch rows (on the CPU, or with `device: "cuda"` on the GPU); throws with PyTorch's
 * stderr when the script fails.
 */
export async function pytorchThroughput(
  python: string,
  spec: { rows: PytorchRowSpec[]; windows: number; threads: number; device?: "cpu" | "cuda" },
): Promise<PytorchReport> {
  const output = await new Deno.Command(python, {
    args: [SCRIPT, JSON.stringify(spec)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (output.code !== 0) {
    throw new Error(
      `bench/pytorch_bench.py failed (exit ${output.code}):\n` +
        new TextDecoder().decode(output.stderr),
    );
  }
  const report = JSON.parse(new TextDecoder().decode(output.stdout));
  return {
    python,
    torch: report.torch,
    threads: report.threads,
    blas: report.blas,
    openblasCoretype: Deno.env.get("OPENBLAS_CORETYPE") ?? null,
    device: report.device,
    rows: report.rows,
  };
}

/** PyTorch's figures for one row, timed window by window alternately with wgtorch's. */
export interface PytorchWindows {
  /** Images per second of each window. */
  windows: number[];
  /** Process CPU milliseconds per step, averaged over the windows. */
  cpuMsPerStep: number;
}

/**
 * A `pytorch_bench.py --serve` subprocess: set up a row, then run its timed windows one at a
 * time, between wgtorch's, so that both see the machine in the same state.
 */
export class PytorchServer {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;

  private constructor(readonly python: string, child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter())
      [Symbol.asyncIterator]();
  }

  /** Starts the subprocess with `threads` intra-op threads. */
  static start(python: string, threads: number): PytorchServer {
    const child = new Deno.Command(python, {
      args: [SCRIPT, "--serve", String(threads)],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    return new PytorchServer(python, child);
  }

  async #ask(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
    const { value, done } = await this.#lines.next();
    if (done) throw new Error(`bench/pytorch_bench.py --serve exited (command ${command.op})`);
    return JSON.parse(value);
  }

  /** What the subprocess runs: torch's version, its threads and the BLAS it loaded. */
  async info(): Promise<Omit<PytorchReport, "rows">> {
    const answer = await this.#ask({ op: "info" });
    return {
      python: this.python,
      torch: answer.torch as string,
      threads: answer.threads as number,
      blas: answer.blas as string[],
      openblasCoretype: Deno.env.get("OPENBLAS_CORETYPE") ?? null,
      device: "cpu",
    };
  }

  /** Builds the row's model and step, warms it up and sizes its windows. */
  async setup(row: PytorchRowSpec): Promise<void> {
    await this.#ask({ op: "setup", ...row });
  }

  /** One timed window of the row set up last: images per second and CPU ms per step. */
  async window(): Promise<{ imagesPerSecond: number; cpuMsPerStep: number }> {
    const answer = await this.#ask({ op: "window" });
    return {
      imagesPerSecond: answer.imagesPerSecond as number,
      cpuMsPerStep: answer.cpuMsPerStep as number,
    };
  }

  /** Ends the subprocess. */
  async close(): Promise<void> {
    await this.#writer.close();
    await this.#child.status;
  }
}

/** Splits a text stream into lines. */
function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) if (line) controller.enqueue(line);
    },
    flush(controller) {
      if (rest) controller.enqueue(rest);
    },
  });
}
