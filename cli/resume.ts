/**
 * `--resume DIR` for the training commands: every run folder keeps the command line that made
 * it (`command.json`); resuming re-runs that command line in the same folder, where finished
 * runs are read back and an interrupted run continues from its last checkpoint.
 *
 * @module
 */

import { join } from "node:path";
import { type Flags, type FlagSpec, parseFlags, UsageError } from "./args.ts";
import { writeJson } from "./files.ts";

/** The file that records a run folder's command line. */
export const COMMAND_FILE = "command.json";

/** `--resume DIR`. */
export const RESUME_FLAG: FlagSpec = {
  name: "resume",
  kind: "string",
  metavar: "DIR",
  help: "continue the interrupted run in DIR with its own settings (finished runs are kept, " +
    "an unfinished one continues from its last checkpoint)",
};

/** What `command.json` holds. */
export interface CommandFile {
  /** The command. */
  command: string;
  /** Its arguments as given. */
  args: string[];
  /** When the run first started (ISO 8601). */
  started?: string;
}

/** Records the command line of a new run folder. */
export async function writeCommandFile(
  dir: string,
  command: string,
  args: readonly string[],
): Promise<void> {
  const file: CommandFile = { command, args: [...args], started: new Date().toISOString() };
  await writeJson(join(dir, COMMAND_FILE), file);
}

/**
 * When a file that a run writes once, at its start (`command.json`, `tune.json`), was written:
 * the run's start time (ISO 8601), or undefined when unknown.
 */
export async function writtenAt(path: string): Promise<string | undefined> {
  try {
    return (await Deno.stat(path)).mtime?.toISOString();
  } catch {
    return undefined;
  }
}

/** What resuming gives a command: the saved arguments, parsed, and the folder. */
export interface Resumed {
  /** The flags of the saved command line. */
  flags: Flags;
  /** The saved arguments. */
  args: string[];
  /** The run folder. */
  dir: string;
  /** When the run first started (ISO 8601), when known. */
  started?: string;
}

/**
 * When `--resume DIR` was given: checks that no other flag (but `--progress`) was, reads
 * `DIR/command.json`, and parses the saved arguments. Otherwise undefined.
 */
export async function resolveResume(
  command: string,
  specs: readonly FlagSpec[],
  flags: Flags,
): Promise<Resumed | undefined> {
  const dir = flags.string("resume");
  if (dir === undefined) return undefined;
  const others = specs.map((spec) => spec.name)
    .filter((name) => flags.has(name) && !["resume", "progress"].includes(name));
  if (others.length > 0) {
    throw new UsageError(
      `${command}: --resume takes its settings from ${join(dir, COMMAND_FILE)}; drop ` +
        `--${others.join(", --")}`,
    );
  }
  let saved: CommandFile;
  try {
    saved = JSON.parse(await Deno.readTextFile(join(dir, COMMAND_FILE)));
  } catch {
    throw new UsageError(
      `${command}: --resume ${dir}: no ${COMMAND_FILE} there (not a ${command} run folder)`,
    );
  }
  if (saved.command !== command) {
    throw new UsageError(
      `${command}: --resume ${dir}: that folder holds a "${saved.command}" run; resume it with ` +
        `deno run -A cli.ts ${saved.command} --resume ${dir}`,
    );
  }
  const args = flags.has("progress")
    ? [...saved.args, "--progress", flags.string("progress")!]
    : saved.args;
  // Folders from before `started` was recorded.
  const started = saved.started ?? await writtenAt(join(dir, COMMAND_FILE));
  return {
    flags: parseFlags({ name: command, description: "", flags: specs }, args),
    args: saved.args,
    dir,
    started,
  };
}
