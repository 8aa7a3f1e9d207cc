/**
 * A throw-away PostgreSQL cluster for the tests: `initdb` in a temporary folder (as the
 * `postgres` user when the tests run as root), listening on 127.0.0.1 only, on a free port,
 * password authentication for TCP. `startCluster()` resolves to null (after printing why) where
 * PostgreSQL is not installed, and the suites skip.
 *
 * @module
 */

import { join } from "node:path";

/** A running cluster. */
export interface PgCluster {
  /** `postgres://tune:secret@127.0.0.1:PORT/tune`. */
  url: string;
  /** The port. */
  port: number;
  /** The data folder. */
  dataDir: string;
  /** `pg_ctl restart` (fast mode). */
  restart(): Promise<void>;
  /** Stops the cluster and removes its folder. */
  stop(): Promise<void>;
}

/** The folder of PostgreSQL's programs (newest version), or null. */
async function binDir(): Promise<string | null> {
  const root = "/usr/lib/postgresql";
  const versions: number[] = [];
  try {
    for await (const entry of Deno.readDir(root)) {
      if (/^\d+$/.test(entry.name)) versions.push(Number(entry.name));
    }
  } catch {
    return null;
  }
  for (const v of versions.sort((a, b) => b - a)) {
    const dir = join(root, String(v), "bin");
    try {
      await Deno.stat(join(dir, "initdb"));
      return dir;
    } catch { /* next */ }
  }
  return null;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function run(cmd: string, args: string[], asPostgres: boolean): Promise<void> {
  const command = asPostgres ? "runuser" : cmd;
  const argv = asPostgres ? ["-u", "postgres", "--", cmd, ...args] : args;
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args: argv,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    const text = new TextDecoder().decode(stderr) + new TextDecoder().decode(stdout);
    throw new Error(`${cmd} ${args.join(" ")} failed (${code}): ${text}`);
  }
}

/** Starts a cluster with user `tune` (password `secret`) owning database `tune`; null if absent. */
export async function startCluster(suite: string): Promise<PgCluster | null> {
  const bin = await binDir();
  if (!bin) {
    console.warn(`${suite}: PostgreSQL is not installed (apt-get install postgresql); skipped`);
    return null;
  }
  const asPostgres = Deno.uid() === 0;
  const root = await Deno.makeTempDir({ prefix: "wgtorch_pg_" });
  const dataDir = join(root, "data");
  const pwfile = join(root, "pw");
  await Deno.writeTextFile(pwfile, "secret\n");
  if (asPostgres) {
    await run("chown", ["-R", "postgres:postgres", root], false);
  }
  await run(join(bin, "initdb"), [
    "-D",
    dataDir,
    "-U",
    "tune",
    "--pwfile",
    pwfile,
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
    "-E",
    "UTF8",
    "--no-sync",
  ], asPostgres);
  const port = freePort();
  const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${root} -c fsync=off`;
  const pgCtl = (action: string) =>
    run(
      join(bin, "pg_ctl"),
      [action, "-D", dataDir, "-w", "-m", "fast", "-o", opts, "-l", join(root, "log")],
      asPostgres,
    );
  await pgCtl("start");
  await run(
    join(bin, "createdb"),
    ["-h", root, "-p", String(port), "-U", "tune", "tune"],
    asPostgres,
  );
  return {
    url: `postgres://tune:secret@127.0.0.1:${port}/tune`,
    port,
    dataDir,
    restart: () => pgCtl("restart"),
    async stop() {
      await pgCtl("stop").catch(() => {});
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
}
