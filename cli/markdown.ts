/**
 * Markdown building blocks for reports: tables and number formatting.
 *
 * @module
 */

/** A Markdown table; `align` per column (`l`, `r` or `c`, default `l` for the first, `r` else). */
export function table(
  headers: readonly string[],
  rows: readonly (readonly (string | number)[])[],
  align?: readonly ("l" | "r" | "c")[],
): string {
  const cell = (value: string | number) =>
    String(value).replaceAll("|", "\\|").replaceAll("\n", " ");
  const sides = headers.map((_, i) => align?.[i] ?? (i === 0 ? "l" : "r"));
  const rule = sides.map((side) => side === "r" ? "---:" : side === "c" ? ":---:" : "---");
  return [
    `| ${headers.map(cell).join(" | ")} |`,
    `| ${rule.join(" | ")} |`,
    ...rows.map((row) => `| ${row.map(cell).join(" | ")} |`),
  ].join("\n");
}

/** A number with `digits` decimals, or `—` when missing or not finite. */
export function fixed(value: number | null | undefined, digits = 4): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? "—"
    : value.toFixed(digits);
}

/** A number with `digits` significant digits, or `—`. */
export function significant(value: number | null | undefined, digits = 3): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? "—"
    : Number(value.toPrecision(digits)).toString();
}

/** Seconds as `12.3 s`, `4 min 05 s` or `1 h 02 min`. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "—";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, "0")} min`;
}

/** The command line as typed, quoted where needed. */
export function commandLine(command: string, args: readonly string[]): string {
  const quote = (arg: string) =>
    /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
  return ["deno run -A cli.ts", command, ...args.map(quote)].join(" ");
}
