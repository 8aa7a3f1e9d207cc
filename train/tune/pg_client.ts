/**
 * The PostgreSQL client of shared studies: `npm:postgres` (pure JavaScript), loaded by a dynamic
 * import only when a `postgres://` storage is used, so that importing the tuner never needs it.
 * Also: the schema, telling transient errors (database restarting, connection lost) from fatal
 * ones (bad URL, wrong password), and retrying with back-off.
 *
 * @module
 */

/** The `npm:postgres` version used. */
export const POSTGRES_CLIENT = "npm:postgres@3.4.5";

/** A row as `npm:postgres` returns it. */
export type Row = Record<string, unknown>;

/** The part of `npm:postgres`'s `sql` tag used here. */
export interface Sql {
  /** A parameterised query. */
  (strings: TemplateStringsArray, ...values: unknown[]): Promise<Row[]>;
  /** Runs `fn` in a transaction (COMMIT when it resolves, ROLLBACK when it throws). */
  begin<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  /** A query without parameters (DDL). */
  unsafe(query: string): Promise<Row[]>;
  /** Closes the connections. */
  end(options?: { timeout?: number }): Promise<void>;
}

/** The storage could not be used: bad URL, refused credentials, unreachable host. */
export class StorageError extends Error {
  /** True when the caller's input is wrong (a malformed URL, settings that differ from the study's). */
  readonly usage: boolean;
  /** A one-line message naming the storage (password hidden). */
  constructor(message: string, options?: ErrorOptions & { usage?: boolean }) {
    super(message, options);
    this.name = "StorageError";
    this.usage = options?.usage ?? false;
  }
}

/** `url` with its password replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/]*):[^@]*@/, "$1:***@");
}

/** Checks `url`'s form; throws a {@linkcode StorageError} naming what is wrong. */
export function checkStorageUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StorageError(
      `storage ${JSON.stringify(redactUrl(url))} is not a URL; expected ` +
        `postgres://user:password@host:port/database`,
      { usage: true },
    );
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new StorageError(
      `storage ${JSON.stringify(redactUrl(url))}: unsupported scheme ${parsed.protocol}; ` +
        `expected postgres://user:password@host:port/database`,
      { usage: true },
    );
  }
  if (parsed.hostname === "") {
    throw new StorageError(`storage ${JSON.stringify(redactUrl(url))}: no host`, { usage: true });
  }
}

function errorCode(error: unknown): string {
  const e = error as { code?: unknown; name?: unknown } | null;
  if (e && typeof e.code === "string") return e.code;
  if (e && typeof e.name === "string") return e.name;
  return "";
}

/**
 * True for errors that pass when the database is back: lost or refused connections, a server
 * shutting down or starting, serialization failures.
 */
export function isTransient(error: unknown): boolean {
  const code = errorCode(error);
  return [
    "ECONNREFUSED",
    "ECONNRESET",
    "EPIPE",
    "ETIMEDOUT",
    "ConnectionRefused",
    "ConnectionReset",
    "BrokenPipe",
    "CONNECTION_CLOSED",
    "CONNECTION_ENDED",
    "CONNECTION_DESTROYED",
    "CONNECT_TIMEOUT",
    "40001",
    "40P01",
  ].includes(code) || code.startsWith("08") || code.startsWith("57P");
}

/** Opens a client for `url` and checks that it can connect (one clear StorageError if not). */
export async function connect(
  url: string,
  options: { timeoutSeconds?: number } = {},
): Promise<Sql> {
  checkStorageUrl(url);
  let postgres: (url: string, options: Row) => Sql;
  try {
    // A computed specifier: type checkers and bundlers of the tuner never resolve the client.
    const specifier: string = POSTGRES_CLIENT;
    postgres = (await import(specifier)).default;
  } catch (error) {
    throw new StorageError(
      `storage: could not load the PostgreSQL client ${POSTGRES_CLIENT}: ${
        (error as Error).message
      }`,
      { cause: error },
    );
  }
  const sql = postgres(url, {
    max: 4,
    onnotice: () => {},
    connect_timeout: options.timeoutSeconds ?? 10,
    idle_timeout: 0,
  });
  try {
    await sql`SELECT 1`;
  } catch (error) {
    await sql.end({ timeout: 0 }).catch(() => {});
    const code = errorCode(error);
    const reason = code === "28P01" || code === "28000"
      ? "authentication failed (check the user and password)"
      : code === "3D000"
      ? `database does not exist (${(error as Error).message})`
      : isTransient(error)
      ? `cannot reach the server (${code || (error as Error).message})`
      : (error as Error).message;
    throw new StorageError(`storage ${redactUrl(url)}: ${reason}`, { cause: error });
  }
  return sql;
}

/** The tables of shared studies (created if missing, under an advisory lock). */
export const SCHEMA: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS experiments (
    study text PRIMARY KEY,
    spec text NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE TABLE IF NOT EXISTS trials (
    study text NOT NULL REFERENCES experiments ON DELETE CASCADE,
    trial text NOT NULL,
    idx integer NOT NULL,
    status text NOT NULL,
    attempt integer NOT NULL DEFAULT 0,
    owner text,
    lease_until timestamptz,
    PRIMARY KEY (study, trial)
  )`,
  `CREATE TABLE IF NOT EXISTS journal (
    study text NOT NULL REFERENCES experiments ON DELETE CASCADE,
    seq bigint NOT NULL,
    trial text NOT NULL,
    iteration integer,
    event text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (study, seq),
    UNIQUE (study, trial, iteration)
  )`,
  `CREATE TABLE IF NOT EXISTS checkpoints (
    study text NOT NULL REFERENCES experiments ON DELETE CASCADE,
    trial text NOT NULL,
    iteration integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (study, trial)
  )`,
];

/**
 * Extends a trial's lease by `lease` seconds (database clock) if `attempt` still holds it; true
 * when another worker took the trial over (a trial that just finished under this attempt is not
 * lost: its lease simply ends).
 */
export async function extendLease(
  sql: Sql,
  where: { study: string; trial: string; attempt: number; lease: number },
): Promise<boolean> {
  const { study, trial, attempt, lease } = where;
  const touched = await sql`UPDATE trials SET lease_until = now() + make_interval(secs => ${lease})
    WHERE study = ${study} AND trial = ${trial} AND attempt = ${attempt} AND status = 'RUNNING'
    RETURNING trial`;
  if (touched.length > 0) return false;
  const [row] = await sql`SELECT attempt FROM trials WHERE study = ${study} AND trial = ${trial}`;
  return !row || row.attempt !== attempt;
}

/** The advisory lock key that serialises schema creation. */
export const SCHEMA_LOCK = 7_415_301;

/** Runs `fn`, retrying transient errors with exponential back-off for up to `seconds`. */
export async function withRetry<T>(
  fn: () => Promise<T>,
  options: { seconds: number; what: string; onRetry?: (error: unknown, waitMs: number) => void },
): Promise<T> {
  const deadline = performance.now() + options.seconds * 1000;
  let wait = 100;
  while (true) {
    try {
      return await fn();
    } catch (error) {
      if (!isTransient(error) || performance.now() + wait > deadline) {
        if (isTransient(error)) {
          throw new StorageError(
            `storage: ${options.what}: the database stayed unreachable for ${options.seconds} s ` +
              `(${errorCode(error)})`,
            { cause: error },
          );
        }
        throw error;
      }
      options.onRetry?.(error, wait);
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 5000);
    }
  }
}

/**
 * A directory tree as bytes (checkpoints go into a `bytea`): per file, the path length (u32),
 * the UTF-8 relative path, the size (u64 as two u32) and the contents.
 */
export async function packDir(dir: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const encoder = new TextEncoder();
  const walk = async (rel: string): Promise<void> => {
    const entries: Deno.DirEntry[] = [];
    for await (const entry of Deno.readDir(rel ? `${dir}/${rel}` : dir)) entries.push(entry);
    entries.sort((a, b) => a.name < b.name ? -1 : 1);
    for (const entry of entries) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory) {
        await walk(path);
        continue;
      }
      const name = encoder.encode(path);
      const data = await Deno.readFile(`${dir}/${path}`);
      const header = new DataView(new ArrayBuffer(12));
      header.setUint32(0, name.length, true);
      header.setUint32(4, data.length % 2 ** 32, true);
      header.setUint32(8, Math.floor(data.length / 2 ** 32), true);
      parts.push(new Uint8Array(header.buffer.slice(0, 4)), name);
      parts.push(new Uint8Array(header.buffer.slice(4)), data);
    }
  };
  await walk("");
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Writes the files of {@linkcode packDir}'s `bytes` into `dir` (created). */
export async function unpackDir(bytes: Uint8Array, dir: string): Promise<void> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder();
  let offset = 0;
  await Deno.mkdir(dir, { recursive: true });
  while (offset < bytes.length) {
    const nameLength = view.getUint32(offset, true);
    const name = decoder.decode(bytes.subarray(offset + 4, offset + 4 + nameLength));
    offset += 4 + nameLength;
    const size = view.getUint32(offset, true) + view.getUint32(offset + 4, true) * 2 ** 32;
    offset += 8;
    if (name.split("/").some((p) => p === ".." || p === "") || offset + size > bytes.length) {
      throw new Error(`checkpoint: corrupt archive at byte ${offset}`);
    }
    const slash = name.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(`${dir}/${name.slice(0, slash)}`, { recursive: true });
    await Deno.writeFile(`${dir}/${name}`, bytes.subarray(offset, offset + size));
    offset += size;
  }
}
