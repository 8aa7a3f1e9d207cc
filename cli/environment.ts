/**
 * What a run ran on, for reports: adapter, Deno, OS, CPUs, date and the command line.
 *
 * @module
 */

import { describeAdapter } from "../nn/gpu/device.ts";
import { commandLine } from "./markdown.ts";

/** The machine and invocation of a run. */
export interface RunEnvironment {
  /** The WebGPU adapter, in words. */
  adapter: string;
  /** Deno, V8 and TypeScript versions. */
  deno: string;
  /** Operating system and architecture. */
  os: string;
  /** Logical CPUs, when known. */
  cpus: number | null;
  /** Start time (ISO 8601): when the run folder was first started. */
  date: string;
  /** When this process resumed the run (ISO 8601), if it did. */
  resumed?: string;
  /** The command line. */
  command: string;
}

/** The environment of this process (call after `init()`). */
export function runEnvironment(
  command: string,
  args: readonly string[],
  options: { startedAt?: string } = {},
): RunEnvironment {
  const now = new Date().toISOString();
  let cpus: number | null = null;
  try {
    cpus = navigator.hardwareConcurrency ?? null;
  } catch { /* unknown */ }
  return {
    adapter: describeAdapter(),
    deno: `Deno ${Deno.version.deno} (V8 ${Deno.version.v8})`,
    os: `${Deno.build.os} ${Deno.build.arch}`,
    cpus,
    date: options.startedAt ?? now,
    ...(options.startedAt === undefined ? {} : { resumed: now }),
    command: commandLine(command, args),
  };
}

/** Markdown lines describing the environment. */
export function environmentLines(env: RunEnvironment): string[] {
  return [
    `- Command: \`${env.command}\``,
    `- Started: ${env.date}${env.resumed ? ` (resumed ${env.resumed})` : ""}`,
    `- Adapter: ${env.adapter}`,
    `- Machine: ${env.os}, ${env.cpus ?? "?"} logical CPUs, ${env.deno}`,
  ];
}
