/**
 * Command-line flags: declared once (name, type, range, default, help), parsed strictly, and
 * turned into the `--help` text. Every mistake is a `UsageError` (exit code 2) whose message
 * names the flag and what it accepts.
 *
 * @module
 */

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
}

/** A mistake on the command line: the CLI prints the message and exits with code 2. */
export class UsageError extends Error {
  /** A usage error with its one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Parsed flags: typed getters, defaults applied. */
export class Flags {
  readonly #values: Map<string, string | number | boolean>;
  readonly #given: Set<string>;
  readonly #specs: Map<string, FlagSpec>;

  /** Holds parsed values; made by `parseFlags`. */
  constructor(
    specs: readonly FlagSpec[],
    values: Map<string, string | number | boolean>,
    given: Set<string>,
  ) {
    this.#specs = new Map(specs.map((spec) => [spec.name, spec]));
    this.#values = values;
    this.#given = given;
  }

  #get(name: string): string | number | boolean | undefined {
    if (!this.#specs.has(name)) throw new Error(`flags: no flag --${name} was declared`);
    return this.#values.get(name) ?? this.#specs.get(name)!.default;
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

  /** Every value (defaults included), for recording a run's settings. */
  toJSON(): Record<string, string | number | boolean> {
    const out: Record<string, string | number | boolean> = {};
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

/**
 * Parses `args` against `specs`: `--name value`, `--name=value`, `-x value`, and `--name` for
 * booleans. Unknown flags, missing values, stray arguments and bad values throw `UsageError`.
 */
export function parseFlags(
  command: string,
  specs: readonly FlagSpec[],
  args: readonly string[],
): Flags {
  const byName = new Map(specs.map((spec) => [spec.name, spec]));
  const byShort = new Map(specs.filter((s) => s.short).map((spec) => [spec.short!, spec]));
  const values = new Map<string, string | number | boolean>();
  const given = new Set<string>();
  const help = `see: deno run -A cli.ts ${command} --help`;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    let spec: FlagSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith("--") && arg.length > 2) {
      const eq = arg.indexOf("=");
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      if (eq >= 0) inline = arg.slice(eq + 1);
      spec = byName.get(name);
      if (!spec) throw new UsageError(`${command}: unknown flag --${name} (${help})`);
    } else if (/^-[a-zA-Z]$/.test(arg)) {
      spec = byShort.get(arg.slice(1));
      if (!spec) throw new UsageError(`${command}: unknown flag ${arg} (${help})`);
    } else {
      throw new UsageError(`${command}: unexpected argument ${JSON.stringify(arg)} (${help})`);
    }
    if (spec.kind === "boolean") {
      if (inline !== undefined) {
        throw new UsageError(`${command}: --${spec.name} takes no value (got "${inline}")`);
      }
      values.set(spec.name, true);
    } else {
      let raw = inline;
      if (raw === undefined) {
        const next = args[i + 1];
        if (next === undefined || /^--./.test(next)) {
          throw new UsageError(`${command}: --${spec.name} needs a value (${valueHint(spec)})`);
        }
        raw = next;
        i++;
      }
      values.set(spec.name, convertValue(command, spec, raw));
    }
    given.add(spec.name);
  }
  return new Flags(specs, values, given);
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
export function formatHelp(
  command: string,
  description: string,
  specs: readonly FlagSpec[],
): string {
  const visible = specs.filter((spec) => !spec.hidden);
  const width = Math.min(30, Math.max(...visible.map((spec) => flagColumn(spec).length)) + 2);
  const lines = [
    `Usage: deno run -A cli.ts ${command} [flags]`,
    "",
    description.trim(),
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
