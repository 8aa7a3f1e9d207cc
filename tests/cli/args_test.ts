/**
 * CLI parsing: unknown flags, bad and out-of-range values are exit code 2 with a message naming
 * the flag and what it accepts; --help lists every flag with its default. In-process through
 * `main()`, plus the real entry point as a subprocess.
 */

import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { COMMANDS, main } from "../../cli.ts";
import { formatHelp, parseFlags, UsageError, wrap } from "../../cli/args.ts";
import type { CommandIo } from "../../cli/harness.ts";
import { TRAIN_COMMAND } from "../../cli/train_command.ts";
import { runCli } from "../cli_fixtures.ts";

function capture(): CommandIo & { outText: () => string; errText: () => string } {
  const out: string[] = [], err: string[] = [];
  return {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    outText: () => out.join("\n"),
    errText: () => err.join("\n"),
  };
}

const specs = TRAIN_COMMAND.flags;

Deno.test("parseFlags: defaults, --name value, --name=value, booleans, negative numbers", () => {
  const flags = parseFlags(TRAIN_COMMAND, ["--lr=0.001", "--epochs", "3", "--swap-split"]);
  equal(flags.number("lr"), 0.001);
  equal(flags.number("epochs"), 3);
  equal(flags.number("batch-size"), 128);
  equal(flags.string("model"), "cnn-bn");
  equal(flags.boolean("swap-split"), true);
  equal(flags.boolean("offline"), false);
  ok(flags.has("lr") && !flags.has("model"));
  deepEqual(flags.toJSON().optimizer, "adam");
});

Deno.test("parseFlags: every mistake is a UsageError naming the flag and the valid values", () => {
  const cases: [string[], RegExp][] = [
    [["--bogus"], /unknown flag --bogus/],
    [["-x"], /unknown flag -x/],
    [["stray"], /unexpected argument "stray"/],
    [["--model", "resnet"], /--model "resnet": expected one of mlp, cnn, cnn-bn, tuning-cnn/],
    [["--optimizer", "rmsprop"], /--optimizer "rmsprop": expected one of adam, sgd/],
    [["--batch-size", "0"], /--batch-size "0": expected an integer >= 1/],
    [["--batch-size", "12.5"], /--batch-size "12.5": expected an integer >= 1/],
    [["--epochs", "ten"], /--epochs "ten": expected an integer >= 1/],
    [["--lr", "-1"], /--lr "-1": expected a number > 0/],
    [["--lr", "0"], /--lr "0": expected a number > 0/],
    [["--val-split", "1"], /--val-split "1": expected a number >= 0 and < 1/],
    [["--gamma", "2"], /--gamma "2": expected a number > 0 and <= 1/],
    [["--momentum", "1"], /--momentum "1": expected a number >= 0 and < 1/],
    [["--lr"], /--lr needs a value \(a number > 0\)/],
    [["--lr", "--epochs", "2"], /--lr needs a value/],
    [["--offline=yes"], /--offline takes no value \(got "yes"\)/],
    [["--epochs", "2", "--", "x"], /unexpected argument "x"/],
    [["-"], /unexpected argument "-"/],
    [["--out="], /--out "": expected a non-empty value/],
  ];
  for (const [args, pattern] of cases) {
    throws(() => parseFlags(TRAIN_COMMAND, args), (error: Error) => {
      ok(error instanceof UsageError, `${args.join(" ")}: ${error}`);
      match(error.message, /^train: /);
      match(error.message, pattern);
      return true;
    });
  }
});

Deno.test("parseFlags: values that start with a dash, -h, repeated flags, the valid flags listed", () => {
  const flags = parseFlags(TRAIN_COMMAND, ["--epochs", "2", "--epochs=4", "-h"]);
  equal(flags.number("epochs"), 4, "the last value wins");
  ok(flags.boolean("help"));
  throws(() => parseFlags(TRAIN_COMMAND, ["--lr", "-0.5"]), /--lr "-0.5": expected a number > 0/);
  throws(() => parseFlags(TRAIN_COMMAND, ["--lr=-0.5"]), /--lr "-0.5": expected a number > 0/);
  throws(() => parseFlags(TRAIN_COMMAND, ["--epoch", "2"]), (error: Error) => {
    ok(error instanceof UsageError);
    match(error.message, /^train: unknown flag --epoch: expected one of --model, --l1, /);
    for (const spec of specs.filter((spec) => !spec.hidden)) {
      ok(error.message.includes(`--${spec.name},`) || error.message.includes(`--${spec.name} (`));
    }
    match(error.message, /\(see: deno run -A cli\.ts train --help\)$/);
    return true;
  });
  const command = {
    name: "fetch",
    description: "Fetches.",
    invocation: "deno task fetch",
    flags: [
      { name: "mirror", kind: "string", multiple: true, metavar: "URL", help: "a mirror" },
      { name: "retries", kind: "integer", min: 0, default: 3, help: "retries" },
    ] as const,
  };
  const many = parseFlags(command, ["--mirror", "a", "--retries", "0", "--mirror=b"]);
  deepEqual(many.strings("mirror"), ["a", "b"]);
  equal(many.number("retries"), 0);
  deepEqual(parseFlags(command, []).strings("mirror"), []);
  equal(parseFlags(command, []).number("retries"), 3);
  throws(() => parseFlags(command, ["--mirror"]), /: fetch: --mirror needs a value \(URL\)$/);
  throws(() => parseFlags(command, ["-q"]), /\(see: deno task fetch --help\)$/);
  match(formatHelp(command), /^Usage: deno task fetch \[flags\]\n\nFetches\./);
});

Deno.test("help lists every visible flag with its default, wrapped at 100 columns", () => {
  const help = formatHelp(TRAIN_COMMAND);
  for (const spec of specs) ok(help.includes(`--${spec.name}`), spec.name);
  match(help, /--batch-size N\s+training batch size \(default: 128\)/);
  match(help, /--model mlp\|cnn\|cnn-bn\|tuning-cnn\s*\n\s+architecture .*\(default: cnn-bn\)/);
  ok(help.split("\n").every((line) => line.length <= 100), "lines fit 100 columns");
  deepEqual(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
});

Deno.test("main: exit codes and messages for unknown commands, bad flags and --help", async () => {
  let io = capture();
  equal(await main(["frobnicate"], io), 2);
  match(io.errText(), /unknown command "frobnicate": expected one of download, train/);
  io = capture();
  equal(await main(["train", "--batch-size", "-3"], io), 2);
  match(io.errText(), /train: --batch-size "-3": expected an integer >= 1/);
  io = capture();
  equal(await main(["tune", "--optimizer", "adagrad"], io), 2);
  match(io.errText(), /tune: --optimizer "adagrad": expected one of adam, sgd, both/);
  io = capture();
  equal(await main(["tune", "--reduction-factor", "1"], io), 2);
  match(io.errText(), /--reduction-factor "1": expected a number > 1/);
  io = capture();
  equal(await main(["evaluate"], io), 2);
  match(io.errText(), /evaluate: --weights FILE is required/);
  io = capture();
  equal(await main(["train", "--no-verify"], io), 2);
  match(io.errText(), /--no-verify needs --data-dir/);
  for (
    const command of [
      "train",
      "evaluate",
      "predict",
      "compare",
      "optimizers",
      "tune",
      "final",
      "reproduce",
    ]
  ) {
    io = capture();
    equal(await main([command, "--help"], io), 0, command);
    match(io.outText(), new RegExp(`^Usage: deno run -A cli.ts ${command} \\[flags\\]`));
    match(io.outText(), /-h, --help/);
  }
  io = capture();
  equal(await main(["--help"], io), 0);
  match(io.outText(), /reproduce\s+every experiment/);
});

Deno.test("the real entry point exits 2 and names the flag", async () => {
  const bad = await runCli(["train", "--epochs", "0"]);
  equal(bad.code, 2);
  match(bad.stderr, /train: --epochs "0": expected an integer >= 1/);
  const unknown = await runCli(["compare", "--frobnicate"]);
  equal(unknown.code, 2);
  match(unknown.stderr, /compare: unknown flag --frobnicate/);
});

Deno.test("docs/CLI.md holds the --help of every command, as it prints", async () => {
  const doc = await Deno.readTextFile(new URL("../../docs/CLI.md", import.meta.url));
  for (const name of Object.keys(COMMANDS)) {
    const io = capture();
    equal(await main([name, "--help"], io), 0, name);
    ok(
      doc.includes(`### ${name}\n\n\`\`\`\n${io.outText()}\n\`\`\`\n`),
      `docs/CLI.md: the "${name}" section differs from \`deno run -A cli.ts ${name} --help\``,
    );
  }
});
