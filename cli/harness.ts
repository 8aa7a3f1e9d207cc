/**
 * What every command shares: flag parsing with `--help`, exit codes, error printing, and the
 * setup of a training command (output folder, WebGPU device, data, Ctrl-C).
 *
 * Exit codes: 0 success, 1 failure (data, I/O, diverged training), 2 usage error, 130 Ctrl-C.
 *
 * @module
 */

import { DataError } from "../data/errors.ts";
import { init } from "../nn/gpu/device.ts";
import type { ModelSizeConfig } from "../nn/model_limits.ts";
import { type Flags, type FlagSpec, formatHelp, parseFlags, UsageError } from "./args.ts";
import { type DataChoice, dataChoice, GpuData, prepareData } from "./data.ts";
import { checkBatchSizeForAll } from "./device_limits.ts";
import { type RunEnvironment, runEnvironment } from "./environment.ts";
import { claimRunDir, displayPath, prepareOutDir, type RunDirClaim } from "./files.ts";
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
    // A system error (ENOSPC, EACCES, ...: it has a `code`) names its file; no stack trace.
    const systemError = error instanceof Error && typeof Reflect.get(error, "code") === "string";
    if (error instanceof DataError || systemError) io.err(`error: ${error.message}`);
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
  /** Frees the data, removes the Ctrl-C handler and releases the output folder's lock. */
  dispose(): void;
}

/** How `setupRun` gets its output folder: claimed already, an existing run's (`--resume`), or --out. */
export interface SetupOptions {
  /** A folder the command claimed itself. */
  claim?: RunDirClaim;
  /** The folder of the run being resumed (claimed here). */
  outDir?: string;
  /** When the run first started (resume). */
  startedAt?: string;
  /** The data flags, when not `flags`'. */
  choice?: DataChoice;
  /** Validation/test batch size, when not `flags`'. */
  evalBatchSize?: number;
  /** The models the command trains: `--eval-batch-size` must fit each on this adapter. */
  models?: readonly ModelSizeConfig[];
}

/**
 * Output folder (claimed first: a bad or busy `--out` fails fast), WebGPU device (the adapter is
 * printed; `--eval-batch-size` is checked against what it holds for each of `options.models`),
 * data (loaded, split, uploaded), Ctrl-C handler. The folder is released if setup fails.
 */
export async function setupRun(
  command: string,
  args: readonly string[],
  flags: Flags,
  io: CommandIo,
  options: SetupOptions = {},
): Promise<RunSetup> {
  const choice = options.choice ?? dataChoice(command, flags);
  const claim = options.claim ??
    (options.outDir !== undefined
      ? claimRunDir(command, options.outDir)
      : await prepareOutDir(command, flags.string("out"), {
        overwrite: flags.boolean("overwrite"),
      }));
  try {
    return await setupClaimed(command, args, flags, io, options, choice, claim);
  } catch (error) {
    claim.release();
    throw error;
  }
}

async function setupClaimed(
  command: string,
  args: readonly string[],
  flags: Flags,
  io: CommandIo,
  options: SetupOptions,
  choice: DataChoice,
  claim: RunDirClaim,
): Promise<RunSetup> {
  const dir = claim.dir;
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
      claim.release();
    },
  };
}
