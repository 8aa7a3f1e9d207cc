/**
 * `prepareOutDir` and `claimRunDir` in process: unique default folders under concurrency, the
 * run lock (live, stale, foreign host, released), and the refusal of non-empty folders.
 */

import { deepEqual, equal, match, ok, rejects, throws } from "node:assert/strict";
import { join } from "node:path";
import { UsageError } from "../../cli/args.ts";
import { claimRunDir, LOCK_FILE, prepareOutDir } from "../../cli/files.ts";

async function inTempCwd<T>(body: () => Promise<T>): Promise<T> {
  const previous = Deno.cwd();
  Deno.chdir(await Deno.makeTempDir({ prefix: "wgtorch_outdir_" }));
  try {
    return await body();
  } finally {
    Deno.chdir(previous);
  }
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test("concurrent default output folders are all distinct", async () => {
  await inTempCwd(async () => {
    const claims = await Promise.all(
      Array.from({ length: 4 }, () => prepareOutDir("train", undefined)),
    );
    const dirs = claims.map((c) => c.dir);
    equal(new Set(dirs).size, 4, `folders: ${dirs.join(", ")}`);
    for (const dir of dirs) {
      match(dir, /^results\/train\/\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-\d+)?$/);
      ok(await exists(join(dir, LOCK_FILE)));
    }
    for (const claim of claims) claim.release();
    for (const dir of dirs) ok(!(await exists(join(dir, LOCK_FILE))), "released");
  });
});

Deno.test("a held folder is refused, naming the live run; released, it can be claimed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wgtorch_lock_" });
  const claim = claimRunDir("train", dir);
  const lock = JSON.parse(await Deno.readTextFile(join(dir, LOCK_FILE)));
  equal(lock.pid, Deno.pid);
  equal(lock.host, Deno.hostname());
  throws(
    () => claimRunDir("compare", dir),
    (error: Error) =>
      error instanceof UsageError &&
      error.message.includes(`${dir} is in use by a live "train" run (pid ${Deno.pid} on `) &&
      error.message.includes(join(dir, LOCK_FILE)),
  );
  claim.release();
  claim.release();
  ok(!(await exists(join(dir, LOCK_FILE))));
  claimRunDir("train", dir).release();
});

Deno.test("the lock of a dead process on this host is taken over", async () => {
  const child = new Deno.Command("true").spawn();
  await child.status;
  const dir = await Deno.makeTempDir({ prefix: "wgtorch_stale_" });
  const stale = {
    command: "train",
    pid: child.pid,
    host: Deno.hostname(),
    procStart: "1",
    claimed: "2026-01-01T00:00:00.000Z",
  };
  await Deno.writeTextFile(join(dir, LOCK_FILE), JSON.stringify(stale));
  const claim = claimRunDir("train", dir);
  equal(JSON.parse(await Deno.readTextFile(join(dir, LOCK_FILE))).pid, Deno.pid);
  claim.release();
  deepEqual([...Deno.readDirSync(dir)], [], "no takeover file left");
});

Deno.test("a lock of another host, or of a live process, is refused", () => {
  const dir = Deno.makeTempDirSync({ prefix: "wgtorch_foreign_" });
  const lock = (fields: Record<string, unknown>) =>
    Deno.writeTextFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({ command: "tune", claimed: "2026-01-01T00:00:00.000Z", ...fields }),
    );
  lock({ pid: 1, host: "elsewhere.example" });
  throws(() => claimRunDir("train", dir), /in use by a live "tune" run \(pid 1 on elsewhere/);
  lock({ pid: Deno.pid, host: Deno.hostname() });
  throws(() => claimRunDir("train", dir), /in use by a live "tune" run/);
  ok(Deno.statSync(join(dir, LOCK_FILE)).isFile, "a refused claim leaves the lock alone");
});

Deno.test("--out: a non-empty folder is refused unless overwrite, a run folder always", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wgtorch_nonempty_" });
  await Deno.writeTextFile(join(dir, "notes.txt"), "mine");
  await rejects(
    prepareOutDir("train", dir),
    (error: Error) =>
      error instanceof UsageError &&
      /--out .* is not empty \(1 entries: notes\.txt\).*--overwrite/.test(error.message),
  );
  ok(!(await exists(join(dir, LOCK_FILE))), "a refusal releases the lock");
  const claim = await prepareOutDir("train", dir, { overwrite: true });
  equal(claim.dir, dir);
  claim.release();
  deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["notes.txt"]);
  await Deno.writeTextFile(join(dir, "command.json"), "{}");
  await rejects(
    prepareOutDir("train", dir, { overwrite: true }),
    /already holds a run \(command\.json\); continue it with --resume/,
  );
  const file = join(dir, "notes.txt");
  await rejects(prepareOutDir("train", file), /--out .*notes\.txt is a file; expected a new or/);
  equal(await Deno.readTextFile(file), "mine");
  const empty = join(await Deno.makeTempDir(), "new", "out");
  const fresh = await prepareOutDir("train", empty);
  deepEqual([...Deno.readDirSync(empty)].map((e) => e.name), [LOCK_FILE]);
  fresh.release();
});
