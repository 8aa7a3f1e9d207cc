/**
 * What a command prints when a run did not finish: where its history and checkpoint are, and
 * how to evaluate or continue it.
 *
 * @module
 */

import { join } from "node:path";
import { displayPath } from "./files.ts";
import type { CommandIo } from "./harness.ts";
import type { RunResult } from "./run_training.ts";

/**
 * Prints where an unfinished run's files are, and (interrupted runs) how to continue it:
 * `command --resume topDir` (the command's folder, default the run's own).
 */
export function reportUnfinished(
  result: RunResult,
  io: CommandIo,
  command = "train",
  topDir?: string,
): void {
  const dir = displayPath(result.dir);
  const done = result.history.length;
  const what = result.status === "interrupted" ? "Interrupted" : "Stopped";
  io.err(`${what} after ${done} finished epoch${done === 1 ? "" : "s"} of ${result.spec.epochs}.`);
  if (done > 0) {
    io.err(`  history:    ${join(dir, "history.json")} (and history.csv, curves.svg)`);
    io.err(`  checkpoint: ${join(dir, "checkpoint.safetensors")} (epoch ${done})`);
    io.err(
      `  evaluate it: deno run -A cli.ts evaluate --weights ${join(dir, "checkpoint.safetensors")}`,
    );
  } else {
    io.err(`  no epoch finished; the run folder is ${dir}`);
  }
  if (result.status === "interrupted") {
    io.err(
      `  continue:    deno run -A cli.ts ${command} --resume ${displayPath(topDir ?? result.dir)}`,
    );
  }
}

/**
 * Prints how to continue a command that Ctrl-C stopped after its runs had finished (while it
 * wrote its combined files): `--resume` reads the runs back and writes the files again.
 */
export function reportLateInterrupt(io: CommandIo, command: string, dir: string): void {
  io.err(`Interrupted after every run had finished; the run folder is ${displayPath(dir)}`);
  io.err(`  continue:    deno run -A cli.ts ${command} --resume ${displayPath(dir)}`);
}
