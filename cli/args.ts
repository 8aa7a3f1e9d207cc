/**
 * Command-line flags: declared once (name, type, range, default, help), parsed strictly by
 * `node:util`'s `parseArgs`, checked, and turned into the `--help` text. Every command uses this
 * one parser (`cli.ts`'s commands and `deno task bench`). Every mistake is a `UsageError` (exit
 * code 2) whose message names the flag and what it accepts.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** What a flag's value is. */
export type FlagKind = "string" | "integer" | "number" | "boolean" | "choice";

/** One flag. */
export interface FlagSpec {
  /** The name without dashes, e.g. `batch-size`. */
  name: string;
  /** The value's kind (`boolean` flags take no value). */
  kind: FlagKind;
  /** One line of help. */
  help: string;
  /** The default value (shown in `--help`). */
  default?: string | number | boolean;
  /** How the default reads in `--help`, when not the value itself. */
  defaultText?: string;
  /** Placeholder in `--help`, e.g. `N`, `DIR`. */
  metavar?: string;
  /** The accepted values of a `choice` flag. */
  choices?: readonly string[];
  /** Smallest accepted value (numbers). */
  min?: number;
  /** Largest accepted value (numbers). */
  max?: number;
  /** Whether `min` itself is refused. */
  minExclusive?: boolean;
  /** Whether `max` itself is refused. */
  maxExclusive?: boolean;
  /** A one-letter alias, e.g. `h`. */
  short?: string;
  /** Left out of `--help` (advanced or test-only flags are documented elsewhere). */
  hidden?: boolean;
  /** Whether the flag may be repeated, each value kept (read with `Flags.strings`). */
  multiple?: boolean;
}

/** A command's declaration: what `parseFlags` and `formatHelp` need. */
export interface CommandSpec {
  /** Its name, e.g. `train`: the first word of every usage error. */
  name: string;
  /** What it does (the `--help` paragraph). */
  description: string;
  /** Its flags (`--help` included). */
  flags: readonly FlagSpec[];
  /** How it is run (default `deno run -A cli.ts <name>`), for `--help` and usage errors. */
  invocation?: string;
}

/** A mistake on the command line: the CLI prints the message and exits with code 2. */
export class UsageError extends Error {
  /** A usage error with its one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One parsed value: a list for a repeatable flag. */
export type FlagValue = string | number | boolean | (string | number)[];

/** Parsed flags: typed getters, defaults applied. */
export class Flags {
  readonly #values: Map<string, FlagValue>;
  readonly #given: Set<string>;
  readonly #specs: Map<string, FlagSpec>;

  /** Holds parsed values; made by `parseFlags`. */
  constructor(specs: readonly FlagSpec[], values: Map<string, FlagValue>, given: Set<string>) {
    this.#specs = new Map(specs.map((spec) => [spec.name, spec]));
    this.#values = values;
    this.#given = given;
  }

  #get(name: string): string | number | boolean | undefined {
    if (!this.#specs.has(name)) throw new Error(`flags: no flag --${name} was declared`);
    const value = this.#values.get(name);
    return (Array.isArray(value) ? value.at(-1) : value) ?? this.#specs.get(name)!.default;
  }

  /** Whether the command declares the flag. */
  declared(name: string): boolean {
    return this.#specs.has(name);
  }

  /** Whether the flag was on the command line (not just defaulted). */
  has(name: string): boolean {
    return this.#given.has(name);
  }

  /** A string or choice flag's value (undefined when absent without default). */
  string(name: string): string | undefined {
    const value = this.#get(name);
    return value === undefined ? undefined : String(value);
  }

  /** A numeric flag's value (undefined when absent without default). */
  number(name: string): number | undefined {
    const value = this.#get(name);
    return value === undefined ? undefined : Number(value);
  }

  /** A boolean flag: true when given. */
  boolean(name: string): boolean {
    return this.#get(name) === true;
  }

  /** Every value of a repeatable string flag, in order (empty when absent). */
  strings(name: string): string[] {
    if (!this.#specs.has(name)) throw new Error(`flags: no flag --${name} was declared`);
    const value = this.#values.get(name);
    if (value === undefined) return [];
    return (Array.isArray(value) ? value : [value]).map(String);
  }

  /** Every value (defaults included), for recording a run's settings. */
  toJSON(): Record<string, FlagValue> {
    const out: Record<string, FlagValue> = {};
    for (const [name, spec] of this.#specs) {
      const value = this.#values.get(name) ?? spec.default;
      if (value !== undefined && name !== "help") out[name] = value;
    }
    return out;
  }
}

function describeRange(spec: FlagSpec): string {
  const integer = spec.kind === "integer";
  const what = integer ? "an integer" : "a number";
  const low = spec.min === undefined ? "" : `${spec.minExclusive ? ">" : ">="} ${spec.min}`;
  const high = spec.max === undefined ? "" : `${spec.maxExclusive ? "<" : "<="} ${spec.max}`;
  if (low && high) return `${what} ${low} and ${high}`;
  return [what, low, high].filter(Boolean).join(" ");
}

/** Checks and converts one flag value; throws `UsageError` naming the flag. */
function convertValue(command: string, spec: FlagSpec, raw: string): string | number {
  const fail = (expected: string) =>
    new UsageError(`${command}: --${spec.name} ${JSON.stringify(raw)}: expected ${expected}`);
  if (spec.kind === "choice") {
    const choices = spec.choices ?? [];
    if (!choices.includes(raw)) throw fail(`one of ${choices.join(", ")}`);
    return raw;
  }
  if (spec.kind === "string") {
    if (raw === "") throw fail("a non-empty value");
    return raw;
  }
  const value = Number(raw);
  const integer = spec.kind === "integer";
  if (
    raw.trim() === "" || !Number.isFinite(value) || (integer && !Number.isSafeInteger(value)) ||
    (spec.min !== undefined && (spec.minExclusive ? value <= spec.min : value < spec.min)) ||
    (spec.max !== undefined && (spec.maxExclusive ? value >= spec.max : value > spec.max))
  ) {
    throw fail(describeRange(spec));
  }
  return value;
}

/** `deno run -A cli.ts <name>`, or the command's own invocation. */
function invocationOf(command: CommandSpec): string {
  return command.invocation ?? `deno run -A cli.ts ${command.name}`;
}

/** The part of a `parseArgs` error message in quotes: the flag or argument it is about. */
function quoted(error: Error): string | undefined {
  return /'([^']*)'/.exec(error.message)?.[1];
}

/**
 * Parses `args` for `command` with `node:util`'s `parseArgs` (strict, no positionals):
 * `--name value`, `--name=value`, `-x value`, and `--name` for booleans. Unknown flags (the
 * message lists the valid ones), missing values, stray arguments and bad values (checked against
 * each flag's kind and range) throw `UsageError`.
 */
export function parseFlags(command: CommandSpec, args: readonly string[]): Flags {
  const { name: prefix, flags: specs } = command;
  const byName = new Map(specs.map((spec) => [spec.name, spec]));
  const byShort = new Map(specs.filter((s) => s.short).map((spec) => [spec.short!, spec]));
  const help = `see: ${invocationOf(command)} --help`;
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = {};
  for (const spec of specs) {
    options[spec.name] = {
      type: spec.kind === "boolean" ? "boolean" : "string",
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true } : {}),
    };
  }
  // parseArgs refuses `--lr -1` (a value that starts with a dash) as ambiguous; a flag that
  // takes a value takes the next argument unless that is another `--flag`, as `--lr=-1`.
  const normalized: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const spec = /^--[^=]+$/.test(arg)
      ? byName.get(arg.slice(2))
      : /^-[a-zA-Z]$/.test(arg)
      ? byShort.get(arg.slice(1))
      : undefined;
    const next = args[i + 1];
    if (spec && spec.kind !== "boolean" && next !== undefined && !/^--./.test(next)) {
      normalized.push(`--${spec.name}=${next}`);
      i++;
    } else normalized.push(arg);
  }
  let tokens;
  try {
    tokens = parseArgs({
      args: normalized,
      options,
      strict: true,
      allowPositionals: false,
      tokens: true,
    }).tokens;
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    const code = Reflect.get(error, "code");
    const what = quoted(error) ?? "";
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      const valid = specs.filter((spec) => !spec.hidden).map((spec) => `--${spec.name}`);
      throw new UsageError(
        `${prefix}: unknown flag ${what}: expected one of ${valid.join(", ")} (${help})`,
      );
    }
    if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
      throw new UsageError(`${prefix}: unexpected argument ${JSON.stringify(what)} (${help})`);
    }
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      // `'--lr'`, `'--lr <value>'` or `'-x, --name <value>'`.
      const long = /--([^\s=]+)/.exec(what)?.[1];
      const short = /^-([a-zA-Z])\b/.exec(what)?.[1];
      const spec = long !== undefined ? byName.get(long) : byShort.get(short ?? "");
      if (spec?.kind === "boolean") {
        const given = args.find((arg) => arg.startsWith(`--${spec.name}=`));
        const value = given === undefined ? "" : given.slice(spec.name.length + 3);
        throw new UsageError(`${prefix}: --${spec.name} takes no value (got "${value}")`);
      }
      if (spec) {
        throw new UsageError(`${prefix}: --${spec.name} needs a value (${valueHint(spec)})`);
      }
    }
    throw new UsageError(`${prefix}: ${firstLine(error.message)} (${help})`);
  }
  const values = new Map<string, FlagValue>();
  const given = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== "option") continue;
    const spec = byName.get(token.name)!;
    let value: string | number | boolean = true;
    if (spec.kind !== "boolean") {
      // parseArgs gives a string option its value (strict mode): `?? ""` only satisfies the type.
      value = convertValue(prefix, spec, token.value ?? "");
    }
    if (spec.multiple) {
      const list = values.get(spec.name);
      values.set(spec.name, [...(Array.isArray(list) ? list : []), value as string | number]);
    } else values.set(spec.name, value);
    given.add(spec.name);
  }
  return new Flags(specs, values, given);
}

function firstLine(text: string): string {
  return text.split("\n")[0];
}

function valueHint(spec: FlagSpec): string {
  if (spec.kind === "choice") return `one of ${(spec.choices ?? []).join(", ")}`;
  if (spec.kind === "string") return spec.metavar ?? "a value";
  return describeRange(spec);
}

function flagColumn(spec: FlagSpec): string {
  const names = (spec.short ? `-${spec.short}, ` : "") + `--${spec.name}`;
  if (spec.kind === "boolean") return names;
  const metavar = spec.metavar ??
    (spec.kind === "choice" ? (spec.choices ?? []).join("|") : spec.kind === "integer" ? "N" : "X");
  return `${names} ${metavar}`;
}

/** The `--help` text: usage line, description, and one line per visible flag with its default. */
export function formatHelp(command: CommandSpec): string {
  const visible = command.flags.filter((spec) => !spec.hidden);
  const width = Math.min(30, Math.max(...visible.map((spec) => flagColumn(spec).length)) + 2);
  const lines = [
    `Usage: ${invocationOf(command)} [flags]`,
    "",
    command.description.trim(),
    "",
    "Flags:",
  ];
  for (const spec of visible) {
    const column = flagColumn(spec);
    let text = spec.help;
    const shown = spec.defaultText ??
      (spec.default === undefined || spec.kind === "boolean" ? undefined : String(spec.default));
    if (shown !== undefined) text += ` (default: ${shown})`;
    const wrapped = wrap(text, HELP_WIDTH - width - 2);
    const indent = " ".repeat(width + 2);
    if (column.length + 2 > width) lines.push(`  ${column}`, indent + wrapped[0]);
    else lines.push(`  ${column.padEnd(width)}${wrapped[0]}`);
    for (const rest of wrapped.slice(1)) lines.push(indent + rest);
  }
  return lines.join("\n");
}

const HELP_WIDTH = 100;

/** Splits `text` into lines of at most `width` characters at spaces. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines;
}
