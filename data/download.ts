/**
 * Downloads one file from a list of mirrors tried in order: streamed to a temporary file unique
 * to the process (`NAME.part-PID-N-RANDOM`, so that processes downloading into one folder at
 * once never share one), verified as it is on disk, and renamed to `NAME` only when it verifies;
 * network errors are retried with exponential back-off (resuming with a Range request when the
 * server allows it); an HTTP error or a checksum mismatch moves on to the next mirror; when every
 * mirror failed, the error lists each URL and why.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { IdxFileSpec } from "./checksums.ts";
import { DataError, fileSystemError, firstLine } from "./errors.ts";
import { createProgress, type ProgressMode, type ProgressReporter } from "./progress.ts";
import { verifyGzBytes } from "./verify.ts";

/** Options of `downloadFile`. */
export interface DownloadOptions {
  /** Base URLs (`http://`, `https://` or `file://`, see `normalizeMirror`), tried in order. */
  mirrors: readonly string[];
  /** Extra attempts per mirror after a network error (default 3). */
  retries?: number;
  /** Wait before the first retry in ms, doubled for each further one (default 1000). */
  backoffMs?: number;
  /** Give up an attempt when no byte arrived for this long, in ms (default 30 000). */
  stallTimeoutMs?: number;
  /** Progress: a reporter, or a mode for `createProgress` (default `auto`: a bar on a terminal). */
  progress?: ProgressMode | ProgressReporter;
  /** Where retry notices go (default: `console.error`). */
  log?: (line: string) => void;
  /**
   * Mirrors that could not be reached at all, with why; shared between the files of one
   * dataset so that a dead mirror costs its retries once. Filled by `downloadFile`.
   */
  unreachable?: Map<string, string>;
}

/** A verified download. */
export interface DownloadResult {
  /** Where the file now is. */
  path: string;
  /** The URL it came from. */
  url: string;
  /** Bytes downloaded. */
  bytes: number;
  /** How it was verified: MD5 of the .gz, or SHA-256 of its uncompressed content. */
  method: "md5" | "sha256";
  /** The uncompressed bytes when verification computed them. */
  raw: Uint8Array | null;
}

/** One failed try of one URL. */
export interface DownloadAttempt {
  /** The URL tried. */
  url: string;
  /** Why it failed. */
  reason: string;
}

/** Every mirror failed; `attempts` says how, URL by URL. */
export class DownloadError extends DataError {
  /** Each URL tried, in order, and why it failed. */
  readonly attempts: readonly DownloadAttempt[];

  /** An error for `spec.name` after `attempts` all failed; `path` is where it was to go. */
  constructor(spec: IdxFileSpec, path: string, attempts: readonly DownloadAttempt[]) {
    const lines = attempts.map((attempt) => `  ${attempt.url}: ${attempt.reason}`);
    super(
      `${spec.name}: could not be downloaded from any of ${attempts.length} mirror(s):\n` +
        (lines.length ? lines.join("\n") : "  (no mirror was given)") +
        `\nCheck the network, give another mirror with --mirror URL or WGTORCH_MIRRORS, or ` +
        `copy the file to ${path}.`,
      path,
    );
    this.name = "DownloadError";
    this.attempts = attempts;
  }
}

/**
 * A mirror as a base URL ending in `/`. Accepts `http://`, `https://` and `file://` URLs, and
 * local folder paths (made `file://` URLs). Anything else is a one-line `DataError`.
 */
export function normalizeMirror(mirror: string): string {
  const text = mirror.trim();
  let url: URL;
  if (/^[a-z][a-z0-9+.-]*:/i.test(text) && !/^[a-z]:[\\/]/i.test(text)) {
    try {
      url = new URL(text);
    } catch {
      throw new DataError(`mirror "${text}": not a valid URL. Fix the --mirror value.`, text);
    }
    if (!["http:", "https:", "file:"].includes(url.protocol)) {
      throw new DataError(
        `mirror "${text}": ${url.protocol}// is not supported; use an http://, https:// or ` +
          "file:// URL, or a folder path.",
        text,
      );
    }
  } else if (text) {
    url = pathToFileURL(text);
  } else {
    throw new DataError(`mirror "": empty; give a URL or a folder path.`, text);
  }
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  url.search = url.hash = "";
  return url.href;
}

/** Splits a mirror list such as WGTORCH_MIRRORS (commas and/or white space) into mirrors. */
export function parseMirrorList(text: string): string[] {
  return text.split(/[\s,]+/).filter((item) => item.length > 0);
}

/** A network problem worth retrying. */
class RetryableError extends Error {
  constructor(message: string, readonly connected: boolean) {
    super(message);
  }
}

/** A reason to give up this mirror and try the next. */
class MirrorFailure extends Error {}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** State of one file's transfer from one mirror, kept across retries to resume. */
interface Transfer {
  url: string;
  /** The file's name, for progress. */
  name: string;
  /** Where it goes once verified (named in errors: the temporary file is removed). */
  path: string;
  /** The temporary file, unique to this process and call. */
  part: string;
  file: Deno.FsFile;
  hash: Hash;
  received: number;
  progress: ProgressReporter;
  /** Whether `progress.start` was called and `progress.end` not yet. */
  showing: boolean;
  stallTimeoutMs: number;
}

function startProgress(transfer: Transfer, source: string, total: number | null): void {
  transfer.progress.start(transfer.name, source, total, transfer.received);
  transfer.showing = true;
  transfer.progress.update(transfer.received);
}

function endProgress(transfer: Transfer, ok: boolean, note: string): void {
  if (transfer.showing) transfer.progress.end(ok, note);
  transfer.showing = false;
}

async function append(transfer: Transfer, chunk: Uint8Array): Promise<void> {
  try {
    let offset = 0;
    while (offset < chunk.length) offset += await transfer.file.write(chunk.subarray(offset));
  } catch (error) {
    throw fileSystemError(error, transfer.path, "writing the download");
  }
  transfer.hash.update(chunk);
  transfer.received += chunk.length;
  transfer.progress.update(transfer.received);
}

async function restart(transfer: Transfer): Promise<void> {
  try {
    await transfer.file.truncate(0);
    await transfer.file.seek(0, Deno.SeekMode.Start);
  } catch (error) {
    throw fileSystemError(error, transfer.path, "truncating the partial download");
  }
  transfer.hash = createHash("md5");
  transfer.received = 0;
}

async function fetchHttp(transfer: Transfer, spec: IdxFileSpec): Promise<void> {
  const controller = new AbortController();
  let stalled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      controller.abort();
    }, transfer.stallTimeoutMs);
  };
  const headers: Record<string, string> = {};
  if (transfer.received > 0) headers["range"] = `bytes=${transfer.received}-`;
  arm();
  let connected = false;
  try {
    const response = await fetch(transfer.url, { headers, signal: controller.signal });
    connected = true;
    const range = response.headers.get("content-range") ?? "";
    if (
      transfer.received > 0 &&
      !(response.status === 206 && range.startsWith(`bytes ${transfer.received}-`))
    ) {
      if (response.status === 416 || response.ok) await restart(transfer);
      if (response.status === 416) {
        await response.body?.cancel();
        throw new RetryableError("the server refused to resume (HTTP 416)", true);
      }
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new MirrorFailure(`HTTP ${response.status} ${response.statusText}`.trim());
    }
    const length = Number(response.headers.get("content-length") ?? NaN);
    const total = Number.isFinite(length) ? transfer.received + length : spec.bytes || null;
    startProgress(transfer, transfer.url, total);
    if (!response.body) throw new RetryableError("the response has no body", true);
    for await (const chunk of response.body) {
      arm();
      await append(transfer, chunk);
    }
    if (Number.isFinite(length) && transfer.received < total!) {
      throw new RetryableError(
        `connection closed after ${transfer.received} of ${total} bytes`,
        true,
      );
    }
  } catch (error) {
    if (error instanceof DataError || error instanceof MirrorFailure) throw error;
    if (error instanceof RetryableError) throw error;
    const reason = stalled
      ? `no data for ${transfer.stallTimeoutMs / 1000} s after ${transfer.received} bytes`
      : connected
      ? `network error after ${transfer.received} bytes: ${describeNetworkError(error)}`
      : `cannot connect: ${describeNetworkError(error)}`;
    throw new RetryableError(reason, connected);
  } finally {
    clearTimeout(timer);
  }
}

function describeNetworkError(error: unknown): string {
  let text = firstLine(error);
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause) text += ` (${firstLine(cause).replace(/^.*?\): /, "")})`;
  return text;
}

async function readLocal(transfer: Transfer): Promise<void> {
  const path = fileURLToPath(transfer.url);
  let source: Deno.FsFile;
  try {
    source = await Deno.open(path, { read: true });
  } catch (error) {
    throw new MirrorFailure(
      error instanceof Deno.errors.NotFound ? "file not found" : firstLine(error),
    );
  }
  try {
    const info = await source.stat();
    if (!info.isFile) throw new MirrorFailure("not a file");
    startProgress(transfer, transfer.url, info.size);
    for await (const chunk of source.readable) await append(transfer, chunk);
  } catch (error) {
    if (error instanceof DataError || error instanceof MirrorFailure) throw error;
    throw new MirrorFailure(`read error after ${transfer.received} bytes: ${firstLine(error)}`);
  } finally {
    try {
      source.close();
    } catch { /* closed by the readable stream */ }
  }
}

let partCounter = 0;

/** A temporary name beside `path`, unique to this process and call. */
function partPath(path: string): string {
  const random = Array.from(
    crypto.getRandomValues(new Uint8Array(4)),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
  return `${path}.part-${Deno.pid}-${partCounter++}-${random}`;
}

/** A temporary file untouched for this long belongs to a download that was killed. */
const ABANDONED_AFTER_MS = 60 * 60 * 1000;

/**
 * Removes the temporary files of `path` (only names `partPath` makes) left by downloads that
 * were killed: untouched for an hour (a live one writes, or gives up after its stall timeout).
 */
async function removeAbandonedParts(path: string, log: (line: string) => void): Promise<void> {
  const dir = dirname(path);
  const pattern = new RegExp(
    `^${basename(path).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}` +
      `\\.part-\\d+-\\d+-[0-9a-f]{8}$`,
  );
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !pattern.test(entry.name)) continue;
      const part = join(dir, entry.name);
      const modified = (await Deno.stat(part)).mtime?.getTime() ?? Date.now();
      if (Date.now() - modified < ABANDONED_AFTER_MS) continue;
      await Deno.remove(part);
      log(`${part}: removed a partial download abandoned by a process that was stopped`);
    }
  } catch { /* best effort: a file another process removed first, an unreadable folder */ }
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch { /* already gone */ }
}

/** Creates `dir` (and its parents) or throws a one-line error that says how to fix it. */
export async function ensureDirectory(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (error) {
    throw fileSystemError(error, dir, "creating the folder");
  }
  const info = await Deno.stat(dir).catch((error) => {
    throw fileSystemError(error, dir, "checking the folder");
  });
  if (!info.isDirectory) {
    throw fileSystemError(new Deno.errors.AlreadyExists(), dir, "creating the folder");
  }
}

/**
 * Downloads `spec` into `dir` from the first mirror that delivers it intact, verifying the MD5
 * (or, for a copy with another gzip header, the SHA-256 of its content). Never leaves a partial
 * or unverified file under the final name; removes the temporary files of this file that killed
 * downloads left (untouched for an hour). Throws `DownloadError` when every mirror failed, and
 * a one-line `DataError` when the file cannot be written (permissions, full disk).
 */
export async function downloadFile(
  spec: IdxFileSpec,
  dir: string,
  options: DownloadOptions,
): Promise<DownloadResult> {
  const retries = options.retries ?? 3;
  const backoffMs = options.backoffMs ?? 1000;
  const log = options.log ?? ((line: string) => console.error(line));
  const progress = typeof options.progress === "object"
    ? options.progress
    : createProgress({ mode: options.progress });
  const unreachable = options.unreachable ?? new Map<string, string>();
  const path = join(dir, spec.name);
  const mirrors = options.mirrors.map(normalizeMirror);
  await ensureDirectory(dir);
  await removeAbandonedParts(path, log);
  const attempts: DownloadAttempt[] = [];
  for (const mirror of mirrors) {
    const url = new URL(spec.name, mirror).href;
    const dead = unreachable.get(mirror);
    if (dead !== undefined) {
      attempts.push({ url, reason: `skipped: unreachable for an earlier file (${dead})` });
      continue;
    }
    const part = partPath(path);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(part, { write: true, createNew: true });
    } catch (error) {
      throw fileSystemError(error, path, "creating the download's temporary file");
    }
    const transfer: Transfer = {
      url,
      name: spec.name,
      path,
      part,
      file,
      hash: createHash("md5"),
      received: 0,
      progress,
      showing: false,
      stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
    };
    let renamed = false;
    try {
      const failure = await fetchWithRetries(transfer, spec, retries, backoffMs, log);
      if (failure) {
        attempts.push({ url, reason: failure.reason });
        if (failure.unreachable) unreachable.set(mirror, failure.reason);
        continue;
      }
      let bytes: Uint8Array;
      try {
        await file.sync();
        file.close();
        // What is verified is the file as it is on disk, not the stream that was written.
        bytes = await Deno.readFile(part);
      } catch (error) {
        throw fileSystemError(error, path, "writing the download");
      }
      const streamed = transfer.hash.digest("hex");
      const verified = await verifyGzBytes(bytes, spec, { name: url });
      if (!verified.ok) {
        const received = streamed === spec.md5 || bytes.length !== transfer.received
          ? `the ${transfer.received} bytes received (MD5 ${streamed}) differ from the ` +
            `${bytes.length} bytes on disk in ${part}: ${verified.reason}`
          : verified.reason;
        endProgress(transfer, false, "checksum mismatch");
        attempts.push({ url, reason: `checksum mismatch: ${received}` });
        continue;
      }
      endProgress(
        transfer,
        true,
        verified.method === "md5" ? "MD5 verified" : "content SHA-256 verified",
      );
      try {
        await Deno.rename(part, path);
      } catch (error) {
        throw fileSystemError(error, path, "moving the verified download into place");
      }
      renamed = true;
      return { path, url, bytes: transfer.received, method: verified.method, raw: verified.raw };
    } finally {
      try {
        file.close();
      } catch { /* already closed */ }
      if (!renamed) await removeQuietly(part);
    }
  }
  throw new DownloadError(spec, path, attempts);
}

async function fetchWithRetries(
  transfer: Transfer,
  spec: IdxFileSpec,
  retries: number,
  backoffMs: number,
  log: (line: string) => void,
): Promise<{ reason: string; unreachable: boolean } | null> {
  const local = transfer.url.startsWith("file:");
  let everConnected = false;
  for (let attempt = 0;; attempt++) {
    try {
      if (local) await readLocal(transfer);
      else await fetchHttp(transfer, spec);
      return null;
    } catch (error) {
      if (error instanceof MirrorFailure) {
        endProgress(transfer, false, error.message);
        return { reason: error.message, unreachable: false };
      }
      if (!(error instanceof RetryableError)) {
        if (error instanceof DataError) endProgress(transfer, false, firstLine(error));
        throw error;
      }
      everConnected ||= error.connected;
      const shown = transfer.showing;
      endProgress(transfer, false, error.message);
      if (attempt >= retries) {
        const reason = `${error.message} (${attempt + 1} attempts)`;
        return { reason, unreachable: !everConnected };
      }
      const wait = backoffMs * 2 ** attempt;
      // When the progress display just printed the reason, do not repeat it.
      log(
        `${transfer.url}: ${shown ? "" : `${error.message}; `}retrying in ` +
          `${(wait / 1000).toFixed(1)} s (attempt ${attempt + 2} of ${retries + 1})`,
      );
      await sleep(wait);
    }
  }
}
