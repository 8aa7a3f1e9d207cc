/**
 * The command line: download FashionMNIST, train, evaluate, predict, and run every experiment of
 * the study (compare, optimizers, tune, final, reproduce), each writing its curves and a report.
 *
 * ```sh
 * deno task train                                  # CNN-BN with the study's settings
 * deno run -A cli.ts train --model mlp --epochs 5
 * deno run -A cli.ts reproduce --epochs 1 --limit 2000   # every experiment, quickly
 * deno run -A cli.ts <command> --help
 * ```
 *
 * Exit codes: 0 success, 1 failure, 2 usage error, 130 interrupted (Ctrl-C).
 *
 * @module
 */

import { downloadCommand } from "./data/command.ts";
import { shutdown } from "./nn/shutdown.ts";
import { evaluateCommand } from "./cli/evaluate_command.ts";
import { experimentCommand } from "./cli/experiment_command.ts";
import { type CommandIo, CONSOLE_IO } from "./cli/harness.ts";
import { forcedExitInProgress } from "./cli/interrupt.ts";

export type { CommandIo };
import { predictCommand } from "./cli/predict_command.ts";
import { reproduceCommand } from "./cli/reproduce_command.ts";
import { trainCommand } from "./cli/train_command.ts";
import { tuneCommand } from "./cli/tune_command.ts";

/** The commands, in the order `--help` lists them. */
export const COMMANDS: Readonly<
  Record<string, { summary: string; run: (args: string[], io: CommandIo) => Promise<number> }>
> = {
  download: {
    summary: "find or download FashionMNIST, verify it, print where it is",
    run: (args, io) => downloadCommand(args, io),
  },
  train: {
    summary:
      "train one model (default: the study's CNN-BN), evaluate it, write curves and a report",
    run: trainCommand,
  },
  evaluate: {
    summary: "test-set loss, accuracy, per-class accuracy and confusion matrix of saved weights",
    run: evaluateCommand,
  },
  predict: {
    summary: "class probabilities of one test image (--index) or an image file (--image)",
    run: predictCommand,
  },
  compare: {
    summary: "Experiment 1: MLP vs CNN vs CNN-BN (Table 1, Fig. 6)",
    run: (args, io) => experimentCommand("compare", args, io),
  },
  optimizers: {
    summary: "Experiment 2: CNN-BN with Adam vs SGD (Table 2, Fig. 7)",
    run: (args, io) => experimentCommand("optimizers", args, io),
  },
  tune: {
    summary: "Experiment 3: ASHA hyperparameter search, Adam and SGD (Tables 3, 4)",
    run: tuneCommand,
  },
  final: {
    summary: "Experiment 4: final training, Adam 30 epochs / SGD 60 epochs (Table 5, Fig. 8)",
    run: (args, io) => experimentCommand("final", args, io),
  },
  reproduce: {
    summary: "every experiment in order, then one report",
    run: reproduceCommand,
  },
};

/** The top-level help. */
export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length)) + 2;
  return [
    "Usage: deno run -A cli.ts <command> [flags]",
    "",
    'wgtorch: the study "CNNs for image classification" (FashionMNIST) on WebGPU.',
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.summary}`),
    "",
    "Run `deno run -A cli.ts <command> --help` for a command's flags.",
    "`deno task train` is `deno run -A cli.ts train`.",
  ].join("\n");
}

/** Runs the command line `args`; resolves to the exit code. */
export async function main(args: readonly string[], io: CommandIo = CONSOLE_IO): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    (name === undefined ? io.err : io.out)(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`unknown command "${name}": expected one of ${Object.keys(COMMANDS).join(", ")}`);
    io.err("(deno run -A cli.ts --help lists them)");
    return 2;
  }
  return await command.run(rest, io);
}

/**
 * Runs `main`, then destroys the WebGPU device before exiting with its code: exiting while
 * lavapipe's threads still work crashed Deno (SIGSEGV, exit code 139) now and then.
 */
async function runAndExit(args: readonly string[]): Promise<never> {
  let code: number;
  try {
    code = await main(args);
  } catch (error) {
    if (!forcedExitInProgress()) console.error(error);
    code = 1;
  }
  // A second Ctrl-C is already shutting down and exits with 130: what it cut short is not the outcome.
  await forcedExitInProgress();
  try {
    await shutdown({ timeoutMs: SHUTDOWN_TIMEOUT_MS });
  } catch (error) {
    console.error(`wgtorch: shutting the WebGPU device down failed: ${error}`);
  }
  Deno.exit(code);
}

/** Longest wait at exit for GPU work already submitted (it cannot take longer normally). */
const SHUTDOWN_TIMEOUT_MS = 30_000;

if (import.meta.main) {
  await runAndExit(Deno.args);
}
