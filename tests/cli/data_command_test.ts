import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { defaultDataDir, resolveDataDir, resolveMirrors } from "../../data/cache.ts";
import { FASHION_MNIST_MIRRORS } from "../../data/checksums.ts";
import { parseFlags, UsageError } from "../../cli/args.ts";
import { DOWNLOAD_COMMAND, downloadCommand, downloadRequest } from "../../cli/download_command.ts";
import { normalizeMirror, parseMirrorList } from "../../data/download.ts";
import { DataError } from "../../data/errors.ts";
import {
  createProgress,
  formatBytes,
  formatDuration,
  formatProgressLine,
} from "../../data/progress.ts";
import { listDir, tempDir } from "../data_fixtures.ts";
import { runCli, tempOut, writeBlobDataset } from "../cli_fixtures.ts";

function withEnv(values: Record<string, string | undefined>, fn: () => void): void {
  const saved = Object.fromEntries(Object.keys(values).map((key) => [key, Deno.env.get(key)]));
  try {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) Deno.env.delete(key);
      else Deno.env.set(key, value);
    }
    fn();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) Deno.env.delete(key);
      else Deno.env.set(key, value);
    }
  }
}

Deno.test("data folder: --data-dir, then WGTORCH_DATA_DIR, then the XDG cache, then ~/.cache", () => {
  withEnv({ WGTORCH_DATA_DIR: undefined, XDG_CACHE_HOME: "/x/cache", HOME: "/home/u" }, () => {
    equal(defaultDataDir(), "/x/cache/wgtorch/fashion-mnist");
    equal(resolveDataDir(), "/x/cache/wgtorch/fashion-mnist");
    equal(resolveDataDir("rel/dir"), resolve("rel/dir"));
  });
  withEnv({ WGTORCH_DATA_DIR: "/from/env", XDG_CACHE_HOME: undefined, HOME: "/home/u" }, () => {
    equal(defaultDataDir(), "/home/u/.cache/wgtorch/fashion-mnist");
    equal(resolveDataDir(), "/from/env");
    equal(resolveDataDir("/flag"), "/flag");
  });
});

Deno.test("mirrors: --mirror flags, then WGTORCH_MIRRORS, then the official list", () => {
  deepEqual(
    FASHION_MNIST_MIRRORS,
    [
      "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
      "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
  );
  withEnv({ WGTORCH_MIRRORS: undefined }, () => {
    deepEqual(resolveMirrors(), FASHION_MNIST_MIRRORS);
    deepEqual(resolveMirrors(["http://a/"]), ["http://a/"]);
  });
  withEnv({ WGTORCH_MIRRORS: " http://a/x , file:///srv/y  https://b/" }, () => {
    deepEqual(resolveMirrors(), ["http://a/x", "file:///srv/y", "https://b/"]);
    deepEqual(resolveMirrors(["http://flag/"]), ["http://flag/"]);
  });
  deepEqual(parseMirrorList("a,b c\n,d"), ["a", "b", "c", "d"]);
  equal(normalizeMirror("https://host/data"), "https://host/data/");
  equal(normalizeMirror("http://host/data/?x=1"), "http://host/data/");
  equal(normalizeMirror("/srv/mirror"), pathToFileURL("/srv/mirror").href + "/");
  throws(() => normalizeMirror("ftp://host/x"), (error: unknown) => {
    ok(error instanceof DataError);
    match(
      error.message,
      /ftp:\/\/ is not supported; use an http:\/\/, https:\/\/ or file:\/\/ URL/,
    );
    return true;
  });
});

/** `download`'s arguments as library options. */
function parseDownloadArgs(args: string[]) {
  return downloadRequest(parseFlags(DOWNLOAD_COMMAND, args));
}

Deno.test("download command: arguments", () => {
  const parsed = parseDownloadArgs([
    "--data-dir",
    "/d",
    "--mirror",
    "http://a/",
    "--mirror=file:///b/",
    "--offline",
    "--no-system",
    "--retries",
    "0",
    "--quiet",
    "--grid",
    "g.png",
  ]);
  deepEqual(parsed.options.mirrors, ["http://a/", "file:///b/"]);
  equal(parsed.options.dataDir, "/d");
  equal(parsed.options.download, false);
  deepEqual(parsed.options.systemDirs, []);
  equal(parsed.options.retries, 0);
  equal(parsed.options.progress, "none");
  equal(parsed.grid, "g.png");
  const defaults = parseDownloadArgs([]);
  equal(defaults.options.download, true);
  equal(defaults.options.systemDirs, undefined);
  equal(defaults.options.mirrors, undefined, "no --mirror: the library resolves the mirrors");
  equal(defaults.options.dataDir, undefined);
  equal(defaults.options.retries, 3);
  equal(defaults.options.progress, "auto");
  equal(defaults.grid, undefined);
  equal(parseDownloadArgs(["--progress", "lines"]).options.progress, "lines");
  const cases: [string[], RegExp][] = [
    [["--retries=-1"], /--retries "-1": expected an integer >= 0/],
    [["--retries", "-1"], /--retries "-1": expected an integer >= 0/],
    [["--retries", "many"], /--retries "many": expected an integer >= 0/],
    [["--progress", "fancy"], /--progress "fancy": expected one of auto, bar, lines, none/],
    [["--mirror"], /--mirror needs a value \(URL\)/],
    [["--offline=no"], /--offline takes no value/],
    [["extra"], /unexpected argument "extra"/],
  ];
  for (const [args, pattern] of cases) {
    throws(() => parseDownloadArgs(args), (error: unknown) => {
      ok(error instanceof UsageError, String(error));
      match(error.message, /^download: /);
      match(error.message, pattern);
      ok(!error.message.includes("\n"), error.message);
      return true;
    });
  }
});

Deno.test("download command: exit codes and one-line errors", async () => {
  const out: string[] = [], err: string[] = [];
  const io = { out: (line: string) => out.push(line), err: (line: string) => err.push(line) };
  equal(await downloadCommand(["--frobnicate"], io), 2);
  match(
    err.at(-1)!,
    /^download: unknown flag --frobnicate: expected one of --data-dir, --mirror, --offline, --no-system, --retries, --progress, --quiet, --grid, --help \(see: deno run -A cli\.ts download --help\)$/,
  );
  equal(await downloadCommand(["--help"], io), 0);
  match(out.at(-1)!, /^Usage: deno run -A cli\.ts download \[flags\]/);
  for (const spec of DOWNLOAD_COMMAND.flags) ok(out.at(-1)!.includes(`--${spec.name}`), spec.name);
  match(
    out.at(-1)!,
    /--mirror URL +a base URL [^]*\(default: \$WGTORCH_MIRRORS, else the\s+official mirrors\)/,
  );
  match(out.at(-1)!, /--retries N +extra attempts per mirror after a network error \(default: 3\)/);
  const empty = join(tempDir(), "data");
  equal(await downloadCommand(["--data-dir", empty, "--offline", "--no-system", "--quiet"], io), 1);
  match(
    err.at(-1)!,
    /^error: train-images-idx3-ubyte\.gz: not found in .*data, and downloading is off/,
  );
  ok(!err.at(-1)!.includes("\n"));
});

Deno.test("progress: formats, bar on a terminal, lines otherwise", () => {
  equal(formatBytes(812), "812 B");
  equal(formatBytes(29_515), "29.5 kB");
  equal(formatBytes(26_421_880), "26.4 MB");
  equal(formatDuration(7.4), "7s");
  equal(formatDuration(125), "2m05s");
  equal(formatDuration(3720), "1h02m");
  equal(
    formatProgressLine("f.gz", 5e6, 10e6, 2, { width: 10 }),
    "f.gz [#####.....] 5.0 MB / 10.0 MB  2.5 MB/s  ETA 2s",
  );
  equal(formatProgressLine("f.gz", 5e6, null, 2), "f.gz 5.0 MB  2.5 MB/s");
  let clock = 0;
  const bar: string[] = [];
  const barProgress = createProgress({ mode: "bar", write: (t) => bar.push(t), now: () => clock });
  barProgress.start("f.gz", "http://m/f.gz", 1000);
  for (let bytes = 100; bytes <= 1000; bytes += 100) {
    clock += 150;
    barProgress.update(bytes);
  }
  barProgress.end(true, "MD5 verified");
  equal(bar[0], "Downloading http://m/f.gz (1.0 kB)\n");
  ok(bar.slice(1, -1).every((text) => text.startsWith("\rf.gz [") && !text.includes("\n")));
  match(bar.at(-1)!, /^\rf\.gz: 1\.0 kB in 1\.5 s \(.*\/s\), MD5 verified *\n$/);
  clock = 0;
  const lines: string[] = [];
  const lineProgress = createProgress({
    mode: "lines",
    write: (t) => lines.push(t),
    now: () => clock,
    lineIntervalMs: 1000,
  });
  lineProgress.start("f.gz", "http://m/f.gz", 1000);
  for (let bytes = 100; bytes <= 1000; bytes += 100) {
    clock += 300;
    lineProgress.update(bytes);
  }
  lineProgress.end(false, "checksum mismatch");
  ok(lines.every((line) => line.endsWith("\n") && !line.includes("\r")));
  equal(lines.length, 1 + 2 + 1, "start, a line per second, end");
  match(lines.at(-1)!, /f\.gz: failed after 1\.0 kB: checksum mismatch/);
  lines.length = 0;
  clock = 0;
  lineProgress.start("f.gz", "http://m/f.gz", 1000, 400);
  clock = 2000;
  lineProgress.update(1000);
  lineProgress.end(true, "MD5 verified");
  deepEqual(lines, [
    "Downloading http://m/f.gz (1.0 kB, resuming at 400 B)\n",
    "  f.gz [########################] 1.0 kB / 1.0 kB  300 B/s  ETA 0s\n",
    "  f.gz: 600 B in 2.0 s (300 B/s), MD5 verified\n",
  ]);
});

Deno.test("train --data-dir with the user's own files: exit 1 naming each file and --no-verify; nothing deleted", async () => {
  // Four IDX files under FashionMNIST's names that are not the official ones (the user's data).
  const dir = await writeBlobDataset(64, 32);
  const before = new Map<string, Uint8Array>();
  for (const name of listDir(dir)) before.set(name, await Deno.readFile(join(dir, name)));
  const out = await tempOut("own_data");
  const run = await runCli([
    "train",
    "--model",
    "mlp",
    "--epochs",
    "1",
    "--limit",
    "64",
    "--test-limit",
    "32",
    "--offline",
    "--progress",
    "none",
    "--data-dir",
    dir,
    "--out",
    out,
  ]);
  equal(run.code, 1, run.stderr);
  const error = run.stderr.split("\n").find((line) => line.startsWith("error: "));
  ok(error, run.stderr);
  for (const name of before.keys()) ok(error.includes(join(dir, name)), error);
  match(error, /are not the official FashionMNIST files\. Nothing was changed in /);
  match(error, /add --no-verify .*choose another folder with --data-dir/);
  ok(!/^\s+at /m.test(run.stderr), "no stack trace");
  ok(!run.stderr.includes("/usr/share/datasets"), "no silent fall-back to the system copy");
  deepEqual(listDir(dir), [...before.keys()]);
  for (const [name, bytes] of before) deepEqual(await Deno.readFile(join(dir, name)), bytes);
  await Deno.remove(dir, { recursive: true });
});
