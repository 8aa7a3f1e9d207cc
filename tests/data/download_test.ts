import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { DownloadError, downloadFile } from "../../data/download.ts";
import { DataError } from "../../data/errors.ts";
import { ensureFashionMnist, type FashionMnistOptions } from "../../data/fashion_mnist.ts";
import { createProgress } from "../../data/progress.ts";
import { md5Hex, verifyGzFile } from "../../data/verify.ts";
import { FASHION_MNIST_FILES, SYSTEM_DATA_DIRS } from "../../data/checksums.ts";
import { runCli } from "../cli_fixtures.ts";
import {
  fillDisk,
  type Fixture,
  listDir,
  makeFixture,
  mountSmallDisk,
  serveFixture,
  SMALL_DISK_SKIP,
  tempDir,
  writeFixture,
} from "../data_fixtures.ts";
import { gzip } from "../../data/idx.ts";

const fixture: Fixture = await makeFixture();
const NAMES = [...fixture.gz.keys()].sort();
const TRAIN_IMAGES = fixture.files.trainImages;

function quiet(extra: Partial<FashionMnistOptions> = {}) {
  const log: string[] = [];
  const progress: string[] = [];
  const options: FashionMnistOptions = {
    files: fixture.files,
    systemDirs: [],
    retries: 2,
    backoffMs: 5,
    log: (line) => log.push(line),
    progress: createProgress({ mode: "lines", write: (text) => progress.push(text) }),
    ...extra,
  };
  return { options, log, progress };
}

async function assertVerifiedFiles(dir: string): Promise<void> {
  deepEqual(listDir(dir), NAMES, "exactly the four files, no .part");
  for (const name of NAMES) {
    equal(md5Hex(await Deno.readFile(join(dir, name))), md5Hex(fixture.gz.get(name)!));
  }
}

Deno.test("download: all four files from one mirror, verified, no .part left", async () => {
  const server = serveFixture(fixture.gz);
  try {
    const dir = join(tempDir(), "nested", "data");
    const { options, progress } = quiet({ dataDir: dir, mirrors: [server.mirror("ok")] });
    const location = await ensureFashionMnist(options);
    await assertVerifiedFiles(dir);
    equal(location.dataDir, dir);
    for (const file of Object.values(location.files)) {
      equal(file.source, "download");
      equal(file.method, "md5");
      equal(file.url, server.mirror("ok") + file.spec.name);
    }
    const text = progress.join("");
    ok(text.includes(`Downloading ${server.mirror("ok")}${TRAIN_IMAGES.name}`), text);
    ok(text.includes("MD5 verified"), text);
    // Present and valid: not downloaded again.
    const before = server.hits.length;
    const again = await ensureFashionMnist(options);
    equal(server.hits.length, before);
    ok(Object.values(again.files).every((file) => file.source === "cache"));
  } finally {
    await server.close();
  }
});

Deno.test("download: first mirror 404, second mirror OK", async () => {
  const server = serveFixture(fixture.gz);
  try {
    const dir = tempDir();
    const { options } = quiet({
      dataDir: dir,
      mirrors: [server.mirror("missing"), server.mirror("ok")],
    });
    const location = await ensureFashionMnist(options);
    await assertVerifiedFiles(dir);
    equal(location.files.testLabels.url, server.mirror("ok") + fixture.files.testLabels.name);
    equal(server.hits.filter((hit) => hit.path.startsWith("/missing/")).length, 4);
  } finally {
    await server.close();
  }
});

Deno.test("download: wrong bytes are a checksum mismatch; nothing is left under the final name", async () => {
  const server = serveFixture(fixture.gz);
  try {
    const dir = tempDir();
    const { options } = quiet();
    const error = await rejects(
      downloadFile(TRAIN_IMAGES, dir, {
        ...options,
        mirrors: [server.mirror("bad"), server.mirror("html")],
      }),
      (error: unknown) => {
        ok(error instanceof DownloadError);
        equal(error.attempts.length, 2);
        equal(error.attempts[0].url, server.mirror("bad") + TRAIN_IMAGES.name);
        match(error.attempts[0].reason, /^checksum mismatch: MD5 [0-9a-f]{32}, expected/);
        match(error.attempts[1].reason, /looks like an HTML page/);
        match(error.message, /could not be downloaded from any of 2 mirror/);
        ok(error.message.includes(server.mirror("bad") + TRAIN_IMAGES.name));
        ok(error.message.includes(server.mirror("html") + TRAIN_IMAGES.name));
        return true;
      },
    );
    void error;
    deepEqual(listDir(dir), [], "no .part and no final file");
    // A bad mirror followed by a good one: the good one wins.
    const result = await downloadFile(TRAIN_IMAGES, dir, {
      ...options,
      mirrors: [server.mirror("bad"), server.mirror("ok")],
    });
    equal(result.url, server.mirror("ok") + TRAIN_IMAGES.name);
    deepEqual(listDir(dir), [TRAIN_IMAGES.name]);
  } finally {
    await server.close();
  }
});

Deno.test("download: a cut connection is retried (restart, or resume with Range)", async () => {
  const server = serveFixture(fixture.gz);
  try {
    const { options, log, progress } = quiet();
    const dir = tempDir();
    const restarted = await downloadFile(TRAIN_IMAGES, dir, {
      ...options,
      mirrors: [server.mirror("cut-once")],
    });
    equal(restarted.bytes, TRAIN_IMAGES.bytes);
    match(progress.join(""), /failed after .*: (connection closed|network error) after \d+/);
    match(
      log.join("\n"),
      /cut-once\/train-images-idx3-ubyte\.gz: retrying in 0\.0 s \(attempt 2 of 3\)/,
    );
    ok(progress.join("").includes("resuming at") === false, "cut-once restarts from zero");
    const resumedDir = tempDir();
    const resumed = await downloadFile(TRAIN_IMAGES, resumedDir, {
      ...options,
      mirrors: [server.mirror("cut-resume")],
    });
    equal(resumed.method, "md5");
    const ranges = server.hits.filter((hit) => hit.path.startsWith("/cut-resume/")).map((hit) =>
      hit.range
    );
    equal(ranges.length, 2);
    equal(ranges[0], null);
    match(ranges[1] ?? "", /^bytes=\d+-$/);
    ok(Number(/\d+/.exec(ranges[1]!)![0]) > 0, "resumed after the bytes already received");
    deepEqual(listDir(resumedDir), [TRAIN_IMAGES.name]);
    match(progress.join(""), /cut-resume\/train-images-idx3-ubyte\.gz \(.*, resuming at /);
  } finally {
    await server.close();
  }
});

Deno.test("download: a connection cut every time ends in a clear error after the retries", async () => {
  const server = serveFixture(fixture.gz);
  try {
    const { options, log } = quiet({ retries: 2 });
    const dir = tempDir();
    await rejects(
      downloadFile(TRAIN_IMAGES, dir, { ...options, mirrors: [server.mirror("cut-always")] }),
      (error: unknown) => {
        ok(error instanceof DownloadError);
        match(error.attempts[0].reason, /\(3 attempts\)$/);
        return true;
      },
    );
    equal(server.hits.length, 3);
    equal(log.filter((line) => line.includes("retrying in")).length, 2);
    deepEqual(listDir(dir), []);
  } finally {
    await server.close();
  }
});

Deno.test("download: a stalled transfer times out and is retried", async () => {
  const server = serveFixture(fixture.gz);
  try {
    const { options } = quiet({ retries: 1 });
    const dir = tempDir();
    await rejects(
      downloadFile(TRAIN_IMAGES, dir, {
        ...options,
        stallTimeoutMs: 150,
        mirrors: [server.mirror("stall")],
      }),
      /no data for 0.15 s after \d+ bytes \(2 attempts\)/,
    );
    equal(server.hits.length, 2);
    match(server.hits[1].range ?? "", /^bytes=\d+-$/, "the retry asks for the rest");
    deepEqual(listDir(dir), []);
  } finally {
    await server.close();
  }
});

Deno.test("download: file:// mirrors and folder paths; a missing file moves on", async () => {
  const source = tempDir();
  await writeFixture(fixture, source);
  const empty = tempDir();
  const dir = tempDir();
  const { options } = quiet({
    dataDir: dir,
    mirrors: [pathToFileURL(empty).href, pathToFileURL(source).href],
  });
  const location = await ensureFashionMnist(options);
  await assertVerifiedFiles(dir);
  equal(
    location.files.trainLabels.url,
    pathToFileURL(source).href + "/" + fixture.files.trainLabels.name,
  );
  const other = tempDir();
  await ensureFashionMnist({ ...options, dataDir: other, mirrors: [source] }); // a plain path
  await assertVerifiedFiles(other);
});

Deno.test("download: every mirror failing lists each URL and why; a dead mirror is skipped after", async () => {
  const server = serveFixture(fixture.gz);
  const dead = serveFixture(fixture.gz);
  const deadMirror = dead.mirror("ok");
  await dead.close(); // nothing listens there any more: connection refused
  try {
    const dir = tempDir();
    const { options } = quiet({
      dataDir: dir,
      retries: 1,
      mirrors: [deadMirror, server.mirror("missing"), server.mirror("bad")],
    });
    await rejects(ensureFashionMnist(options), (error: unknown) => {
      ok(error instanceof DownloadError);
      const [refused, missing, bad] = error.attempts;
      match(refused.reason, /^cannot connect: .*\(2 attempts\)$/);
      equal(missing.reason, "HTTP 404 Not Found");
      match(bad.reason, /checksum mismatch/);
      const lines = error.message.split("\n");
      equal(lines.length, 5);
      ok(lines[1].startsWith(`  ${deadMirror}${TRAIN_IMAGES.name}: cannot connect`));
      match(lines[4], /the `mirrors` option or WGTORCH_MIRRORS/);
      return true;
    });
    deepEqual(listDir(dir), []);
    // The next file skips the dead mirror instead of paying its retries again.
    const unreachable = new Map<string, string>();
    await rejects(
      downloadFile(TRAIN_IMAGES, dir, { ...options, mirrors: [deadMirror], unreachable }),
    );
    await rejects(
      downloadFile(fixture.files.testLabels, dir, {
        ...options,
        mirrors: [deadMirror],
        unreachable,
      }),
      /skipped: unreachable for an earlier file/,
    );
  } finally {
    await server.close();
  }
});

/** Sets (or, with undefined, deletes) environment variables for the length of `fn`. */
async function withEnv<T>(values: Record<string, string | undefined>, fn: () => Promise<T>) {
  const saved = Object.fromEntries(Object.keys(values).map((key) => [key, Deno.env.get(key)]));
  const apply = (entries: Record<string, string | undefined>) => {
    for (const [key, value] of Object.entries(entries)) {
      if (value === undefined) Deno.env.delete(key);
      else Deno.env.set(key, value);
    }
  };
  apply(values);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/** Every file of `dir` and its bytes. */
async function snapshot(dir: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (const name of listDir(dir)) files.set(name, await Deno.readFile(join(dir, name)));
  return files;
}

Deno.test("a folder the user named: files that are not the official ones are an error naming each; nothing is deleted", async () => {
  // The user's own data (or MNIST) under FashionMNIST's names, with a verified system copy and
  // a working mirror at hand: neither may replace it silently.
  const own = await makeFixture({ seed: 7 });
  const system = tempDir();
  await writeFixture(fixture, system);
  const server = serveFixture(fixture.gz);
  try {
    for (const how of ["dataDir", "WGTORCH_DATA_DIR"] as const) {
      const dir = tempDir();
      await writeFixture(own, dir);
      await Deno.writeFile(join(dir, "notes.txt"), new TextEncoder().encode("mine"));
      const before = await snapshot(dir);
      const { options, log } = quiet({
        dataDir: how === "dataDir" ? dir : undefined,
        systemDirs: [system],
        mirrors: [server.mirror("ok")],
      });
      await withEnv({ WGTORCH_DATA_DIR: how === "dataDir" ? undefined : dir }, async () => {
        await rejects(ensureFashionMnist(options), (error: unknown) => {
          ok(error instanceof DataError, String(error));
          ok(!error.message.includes("\n"), error.message);
          for (const name of NAMES) ok(error.message.includes(join(dir, name)), error.message);
          match(error.message, /are not the official FashionMNIST files\. Nothing was changed in /);
          match(
            error.message,
            /load it with `verify: false`; .*choose another folder with the `dataDir` option or WGTORCH_DATA_DIR/,
          );
          equal(error.path, join(dir, TRAIN_IMAGES.name));
          return true;
        });
      });
      deepEqual(await snapshot(dir), before, `${how}: every file is still there, unchanged`);
      deepEqual(log, []);
    }
    equal(server.hits.length, 0, "nothing is downloaded");
    // One bad file among good ones is named alone.
    const dir = tempDir();
    await writeFixture(fixture, dir);
    await Deno.writeFile(join(dir, TRAIN_IMAGES.name), own.gz.get(TRAIN_IMAGES.name)!);
    const { options } = quiet({ dataDir: dir, mirrors: [server.mirror("ok")] });
    await rejects(
      ensureFashionMnist(options),
      new RegExp(
        `^DataError: ${
          join(dir, TRAIN_IMAGES.name)
        } \\(MD5 [0-9a-f]{32}, expected ${TRAIN_IMAGES.md5}.*\\): is not the official FashionMNIST file\\. .*To use this file as it is, load it with \`verify: false\``,
      ),
    );
    equal(
      md5Hex(await Deno.readFile(join(dir, TRAIN_IMAGES.name))),
      md5Hex(own.gz.get(TRAIN_IMAGES.name)!),
    );
  } finally {
    await server.close();
  }
});

Deno.test("the default cache folder heals itself: a corrupt file is moved aside and fetched again", async () => {
  const server = serveFixture(fixture.gz);
  const cacheHome = tempDir();
  const dir = join(cacheHome, "wgtorch", "fashion-mnist");
  try {
    await writeFixture(fixture, dir);
    const corrupt = fixture.gz.get(TRAIN_IMAGES.name)!.slice(0, 100);
    await Deno.writeFile(join(dir, TRAIN_IMAGES.name), corrupt);
    const { options, log } = quiet({ mirrors: [server.mirror("ok")] });
    const location = await withEnv(
      { XDG_CACHE_HOME: cacheHome, WGTORCH_DATA_DIR: undefined },
      () => ensureFashionMnist(options),
    );
    equal(location.dataDir, dir);
    equal(location.files.trainImages.source, "download");
    equal(location.files.trainLabels.source, "cache");
    match(
      log.join("\n"),
      /train-images-idx3-ubyte\.gz: corrupt cached file \(.*\); moved aside to .*train-images-idx3-ubyte\.gz\.corrupt-[0-9TZ-]+; fetching it again/,
    );
    const aside = listDir(dir).filter((name) => name.includes(".corrupt-"));
    equal(aside.length, 1, listDir(dir).join(", "));
    deepEqual(await Deno.readFile(join(dir, aside[0])), corrupt, "moved aside, not deleted");
    await Deno.remove(join(dir, aside[0]));
    await assertVerifiedFiles(dir);
    equal(server.hits.length, 1);
  } finally {
    await server.close();
  }
});

Deno.test("download: temporary files of killed downloads (untouched for an hour) are removed, nothing else", async () => {
  const server = serveFixture(fixture.gz);
  try {
    const dir = tempDir();
    const name = TRAIN_IMAGES.name;
    const abandoned = `${name}.part-4242-0-0123abcd`;
    const fresh = `${name}.part-4243-0-89abcdef`; // another process may still be writing it
    const others = [`${name}.part`, `${name}.part-1-2-zz`, `notes.part-4242-0-0123abcd`];
    for (const file of [abandoned, fresh, ...others]) {
      await Deno.writeTextFile(join(dir, file), "partial");
    }
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    for (const file of [abandoned, ...others]) {
      await Deno.utime(join(dir, file), twoHoursAgo, twoHoursAgo);
    }
    const { options, log } = quiet();
    await downloadFile(TRAIN_IMAGES, dir, { ...options, mirrors: [server.mirror("ok")] });
    deepEqual(listDir(dir), [fresh, name, ...others].sort());
    match(log.join("\n"), new RegExp(`${abandoned}: removed a partial download abandoned`));
  } finally {
    await server.close();
  }
});

Deno.test("verification: a copy with another gzip header is accepted by the SHA-256 of its content", async () => {
  // Same IDX bytes, recompressed: another .gz (as Debian's package has), same content.
  const raw = fixture.raw.get(TRAIN_IMAGES.name)!;
  const other = await gzip(raw);
  other[4] ^= 1; // a different mtime in the gzip header
  const system = tempDir();
  await writeFixture(fixture, system);
  await Deno.writeFile(join(system, TRAIN_IMAGES.name), other);
  const { options } = quiet({ dataDir: tempDir(), systemDirs: [system], download: false });
  const location = await ensureFashionMnist(options);
  equal(location.files.trainImages.source, "system");
  equal(location.files.trainImages.method, "sha256");
  equal(location.files.trainLabels.method, "md5");
  // The same file from a mirror is accepted too.
  const server = serveFixture(new Map([[TRAIN_IMAGES.name, other]]));
  try {
    const result = await downloadFile(TRAIN_IMAGES, tempDir(), {
      ...options,
      mirrors: [server.mirror("ok")],
    });
    equal(result.method, "sha256");
  } finally {
    await server.close();
  }
});

Deno.test("offline with nothing local: a one-line error naming the file and the fix", async () => {
  const dir = tempDir();
  const { options } = quiet({ dataDir: dir, download: false });
  await rejects(ensureFashionMnist(options), (error: unknown) => {
    ok(error instanceof DataError);
    ok(!error.message.includes("\n"));
    match(
      error.message,
      /^train-images-idx3-ubyte\.gz: not found in .*, and downloading is off\. Run the download command/,
    );
    return true;
  });
});

Deno.test("bad --data-dir: a path that is a file, or lies under a file", async () => {
  const server = serveFixture(fixture.gz);
  try {
    const file = join(tempDir(), "not-a-folder");
    await Deno.writeTextFile(file, "x");
    for (
      const [dataDir, pattern] of [
        [
          file,
          /not-a-folder: exists and is not a folder \(while creating the folder\)\. Remove or rename it, or choose another folder with the `dataDir` option or WGTORCH_DATA_DIR\.$/,
        ],
        [join(file, "sub"), /not-a-folder\/sub: a part of this path is a file, not a folder/],
      ] as const
    ) {
      const { options } = quiet({ dataDir, mirrors: [server.mirror("ok")] });
      await rejects(ensureFashionMnist(options), (error: unknown) => {
        ok(error instanceof DataError, String(error));
        ok(!error.message.includes("\n"), error.message);
        match(error.message, pattern);
        return true;
      });
    }
    equal(server.hits.length, 0);
  } finally {
    await server.close();
  }
});

const isRoot = Deno.uid() === 0;
Deno.test({
  name: `bad --data-dir: a read-only folder${
    isRoot
      ? " (skipped: running as root, chmod does not stop root; the file-as-folder test covers this path)"
      : ""
  }`,
  ignore: isRoot || Deno.build.os === "windows",
  async fn() {
    const server = serveFixture(fixture.gz);
    const dir = tempDir();
    await Deno.chmod(dir, 0o500);
    try {
      const { options } = quiet({ dataDir: join(dir, "data"), mirrors: [server.mirror("ok")] });
      await rejects(ensureFashionMnist(options), (error: unknown) => {
        ok(error instanceof DataError);
        ok(!error.message.includes("\n"));
        match(
          error.message,
          /data: permission denied while creating the folder\. Make the folder writable \(chmod u\+w\) or choose another folder with the `dataDir` option/,
        );
        return true;
      });
      deepEqual(listDir(dir), []);
    } finally {
      await Deno.chmod(dir, 0o700);
      await server.close();
    }
  },
});

Deno.test({
  name: `full disk: a one-line error naming the file; no temporary file is left${
    SMALL_DISK_SKIP ? ` (skipped: ${SMALL_DISK_SKIP})` : ""
  }`,
  ignore: SMALL_DISK_SKIP !== null,
  async fn() {
    const server = serveFixture(fixture.gz);
    const disk = mountSmallDisk(64);
    if ("skip" in disk) throw new Error(disk.skip);
    try {
      await fillDisk(disk.dir, 60 * 1024); // one 4 KiB page left: the download does not fit
      const { options } = quiet();
      await rejects(
        downloadFile(TRAIN_IMAGES, disk.dir, {
          ...options,
          mirrors: [server.mirror("ok"), server.mirror("ok")],
        }),
        (error: unknown) => {
          ok(error instanceof DataError && !(error instanceof DownloadError), String(error));
          ok(!error.message.includes("\n"));
          equal(error.path, join(disk.dir, TRAIN_IMAGES.name));
          match(
            error.message,
            /train-images-idx3-ubyte\.gz: the disk is full \(no space left on device while writing the download\)\. Free some space \(FashionMNIST needs about 31 MB\) or choose another folder with the `dataDir` option/,
          );
          return true;
        },
      );
      deepEqual(listDir(disk.dir), ["filler"]);
      equal(server.hits.length, 1, "a full disk is not a mirror problem: no other mirror is tried");
    } finally {
      await disk.unmount();
      await server.close();
    }
  },
});

const SYSTEM_COPY = SYSTEM_DATA_DIRS[0];
const hasSystemCopy = (() => {
  try {
    return Deno.statSync(join(SYSTEM_COPY, FASHION_MNIST_FILES.trainImages.name)).isFile;
  } catch {
    return false;
  }
})();
Deno.test({
  name: `two download processes into one folder at once: both succeed, the files verify${
    hasSystemCopy
      ? ""
      : ` (skipped: ${SYSTEM_COPY} is absent: apt-get install dataset-fashion-mnist)`
  }`,
  ignore: !hasSystemCopy,
  async fn() {
    // Debian's copy, served slowly from a loopback mirror, so that the second process starts
    // while the first is in the middle of train-images (26 MB).
    const files = new Map<string, Uint8Array>();
    for (const spec of Object.values(FASHION_MNIST_FILES)) {
      files.set(spec.name, await Deno.readFile(join(SYSTEM_COPY, spec.name)));
    }
    const server = serveFixture(files);
    try {
      const dir = join(tempDir(), "data");
      const args = [
        "download",
        "--data-dir",
        dir,
        "--mirror",
        server.mirror("trickle"),
        "--no-system",
        "--progress",
        "lines",
      ];
      const first = runCli(args);
      const started = Date.now();
      while (!server.hits.some((hit) => hit.path.endsWith(FASHION_MNIST_FILES.trainImages.name))) {
        if (Date.now() - started > 60_000) throw new Error("the first download never started");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      const second = runCli(args);
      const runs = await Promise.all([first, second]);
      for (const run of runs) {
        equal(run.code, 0, run.stderr);
        match(run.stdout, /FashionMNIST is ready \(all four files verified\)/);
      }
      const trainImageRequests = server.hits.filter((hit) =>
        hit.path.endsWith(FASHION_MNIST_FILES.trainImages.name)
      );
      equal(trainImageRequests.length, 2, "the two downloads overlapped");
      deepEqual(listDir(dir), Object.values(FASHION_MNIST_FILES).map((spec) => spec.name).sort());
      for (const spec of Object.values(FASHION_MNIST_FILES)) {
        const verdict = await verifyGzFile(join(dir, spec.name), spec);
        ok(verdict?.ok, `${spec.name}: ${verdict && !verdict.ok ? verdict.reason : "missing"}`);
      }
    } finally {
      await server.close();
    }
  },
});
