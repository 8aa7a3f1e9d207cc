/**
 * What every command shares: flag parsing with `--help`, exit codes, error printing, and the
 * setup of a training command (output folder, WebGPU device, data, Ctrl-C).
 *
 * Exit codes: 0 success, 1 failure (data, I/O, diverged training), 2 usage error, 130 Ctrl-C.
 *
 * @module
 */

import { DataError } from "../data/errors.ts";
import { init } from "../nn/device.ts";
import type { ModelSizeConfig } from "../nn/model_limits.ts";
import { type Flags, type FlagSpec, formatHelp, parseFlags, UsageError } from "./args.ts";
import { type DataChoice, dataChoice, GpuData, prepareData } from "./data.ts";
import { checkBatchSizeForAll } from "./device_limits.ts";
import { type RunEnvironment, runEnvironment } from "./environment.ts";
import { displayPath, prepareOutDir } from "./files.ts";
import { type InterruptHandle, onInterrupt } from "./interrupt.ts";
import type { ProgressMode } from "./progress.ts";

/** Where a command's text goes. */
export interface CommandIo {
  /** Results (stdout). */
  out: (line: string) => void;
  /** Progress, notices and errors (stderr). */
  err: (line: string) => void;
}

/** stdout and stderr. */
export const CONSOLE_IO: CommandIo = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

/** A command's declaration. */
export interface CommandSpec {
  /** Its name, e.g. `train`. */
  name: string;
  /** What it does (the `--help` paragraph). */
  description: string;
  /** Its flags (`--help` included). */
  flags: readonly FlagSpec[];
}

/**
 * Parses `args` for `spec`, prints `--help`, runs `body`, and maps errors to exit codes
 * (usage 2, data and other errors 1).
 */
export async function runCommand(
  spec: CommandSpec,
  args: readonly string[],
  io: CommandIo,
  body: (flags: Flags) => Promise<number>,
): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(spec.name, spec.flags, args);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(error.message);
      return 2;
    }
    throw error;
  }
  if (flags.boolean("help")) {
    io.out(formatHelp(spec.name, spec.description, spec.flags));
    return 0;
  }
  try {
    return await body(flags);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(error.message);
      return 2;
    }
    if (error instanceof DataError) io.err(`error: ${error.message}`);
    else io.err(`error: ${error instanceof Error ? error.stack ?? error.message : error}`);
    return 1;
  }
}

/** What a training command has once set up. */
export interface RunSetup {
  /** The output folder. */
  dir: string;
  /** The machine and command line. */
  env: RunEnvironment;
  /** The data, on the GPU. */
  data: GpuData;
  /** How the data was chosen (the data flags). */
  choice: DataChoice;
  /** Ctrl-C. */
  interrupt: InterruptHandle;
  /** Progress mode. */
  progress: ProgressMode;
  /** Validation/test batch size. */
  evalBatchSize: number;
  /** Frees the data and removes the Ctrl-C handler. */
  dispose(): void;
}

/**
 * Output folder (checked first: a bad `--out` fails fast), WebGPU device (the adapter is
 * printed; `--eval-batch-size` is checked against what it holds for each of `options.models`),
 * data (loaded, split, uploaded), Ctrl-C handler.
 */
export async function setupRun(
  command: string,
  args: readonly string[],
  flags: Flags,
  io: CommandIo,
  options: {
    outDir?: string;
    startedAt?: string;
    choice?: DataChoice;
    evalBatchSize?: number;
    models?: readonly ModelSizeConfig[];
  } = {},
): Promise<RunSetup> {
  const choice = options.choice ?? dataChoice(command, flags);
  const dir = options.outDir ?? await prepareOutDir(command, flags.string("out"));
  await init();
  const evalBatchSize = options.evalBatchSize ?? flags.number("eval-batch-size") ?? 1000;
  checkBatchSizeForAll(command, options.models ?? [], "eval-batch-size", evalBatchSize);
  const env = runEnvironment(command, args, { startedAt: options.startedAt });
  io.err(`Adapter: ${env.adapter}`);
  const prepared = await prepareData(choice, io.err);
  const data = new GpuData(prepared);
  io.err(`Data: ${prepared.source}`);
  io.err(
    `Split: ${prepared.split.train} training / ${prepared.split.val} validation / ` +
      `${prepared.split.test} test images${prepared.split.swapped ? " (swapped)" : ""}`,
  );
  io.err(`Output: ${displayPath(dir)}`);
  const interrupt = onInterrupt(io.err);
  return {
    dir,
    env,
    data,
    choice,
    interrupt,
    progress: (flags.string("progress") ?? "auto") as ProgressMode,
    evalBatchSize,
    dispose() {
      interrupt.dispose();
      data.dispose();
    },
  };
}
