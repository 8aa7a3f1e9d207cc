// `deno task bench`'s flags go through the CLI's parser: defaults, lists, and usage errors that
// name the flag.
import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { benchHelp, parseBenchArgs } from "../../bench/mod.ts";
import { UsageError } from "../../cli/args.ts";

Deno.test("bench flags: defaults and given values", () => {
  deepEqual(parseBenchArgs([]), {
    json: undefined,
    tfjs: true,
    pytorch: "auto",
    models: ["mlp", "cnn", "cnn-bn"],
    batches: [32, 128],
    windows: 5,
    profile: false,
    help: false,
  });
  deepEqual(
    parseBenchArgs([
      "--json=out.json",
      "--no-tfjs",
      "--no-pytorch",
      "--models",
      "cnn-bn",
      "--batches",
      "8,64",
      "--windows",
      "2",
      "--profile",
    ]),
    {
      json: "out.json",
      tfjs: false,
      pytorch: "off",
      models: ["cnn-bn"],
      batches: [8, 64],
      windows: 2,
      profile: true,
      help: false,
    },
  );
  equal(parseBenchArgs(["--pytorch"]).pytorch, "required");
  ok(parseBenchArgs(["-h"]).help);
});

Deno.test("bench flags: mistakes are usage errors naming the flag", () => {
  const cases: [string[], RegExp][] = [
    [["--model", "mlp"], /^bench: unknown flag --model: expected one of --json, .*--models,/],
    [["--models", "mlp,resnet"], /--models "mlp,resnet": expected a comma-separated list of mlp/],
    [["--batches", "32,0"], /--batches "32,0": expected a comma-separated list of integers >= 1/],
    [["--batches", "32,"], /--batches "32,": expected/],
    [["--windows", "0"], /--windows "0": expected an integer >= 1/],
    [["--json"], /--json needs a value \(FILE\)/],
    [["--pytorch", "--no-pytorch"], /--pytorch and --no-pytorch contradict each other/],
    [["fast"], /unexpected argument "fast" \(see: deno task bench --help\)/],
  ];
  for (const [args, pattern] of cases) {
    throws(() => parseBenchArgs(args), (error: Error) => {
      ok(error instanceof UsageError, `${args.join(" ")}: ${error}`);
      match(error.message, pattern);
      return true;
    });
  }
  const help = benchHelp();
  match(help, /^Usage: deno task bench \[flags\]/);
  const names = ["json", "no-tfjs", "pytorch", "no-pytorch", "models", "batches", "windows"];
  for (const name of [...names, "profile", "help"]) ok(help.includes(`--${name}`), name);
  match(help, /--windows N +timed windows per row \(default: 5\)/);
});
