/**
 * Verification of a gzipped IDX file against its `IdxFileSpec`: by the MD5 of the `.gz` bytes
 * (the official files), or else by the SHA-256 of the uncompressed bytes (copies whose gzip
 * header was rewritten, such as Debian's).
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { IdxFileSpec } from "./checksums.ts";
import { DataError, firstLine } from "./errors.ts";
import { gunzip } from "./idx.ts";

/** The outcome of a verification. */
export type Verification =
  | {
    /** The file is the expected one. */
    ok: true;
    /** `md5`: the .gz is byte-exact; `sha256`: its uncompressed content is. */
    method: "md5" | "sha256";
    /** The uncompressed bytes when they had to be computed (reuse them instead of gunzipping). */
    raw: Uint8Array | null;
  }
  | {
    /** The file is not the expected one. */
    ok: false;
    /** Why, in a few words. */
    reason: string;
  };

/** MD5 of `bytes`, lower-case hex. */
export function md5Hex(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

/** SHA-256 of `bytes`, lower-case hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Checks the gzipped bytes of a file against `spec`. `md5` may be passed when it was computed
 * already (while streaming a download); `name` names the file in reasons.
 */
export async function verifyGzBytes(
  bytes: Uint8Array,
  spec: IdxFileSpec,
  options: { md5?: string; name?: string } = {},
): Promise<Verification> {
  const md5 = options.md5 ?? md5Hex(bytes);
  if (md5 === spec.md5) return { ok: true, method: "md5", raw: null };
  let raw: Uint8Array;
  try {
    raw = await gunzip(bytes, options.name ?? spec.name);
  } catch (error) {
    const detail = error instanceof DataError
      ? error.message.replace(/^[^:]*: /, "").replace(/ Delete the file.*$/, "")
      : firstLine(error);
    return { ok: false, reason: `MD5 ${md5}, expected ${spec.md5}, and ${detail}` };
  }
  const sha256 = sha256Hex(raw);
  if (sha256 === spec.sha256) return { ok: true, method: "sha256", raw };
  return {
    ok: false,
    reason: `MD5 ${md5}, expected ${spec.md5}; SHA-256 of the ${raw.length} uncompressed bytes ` +
      `${sha256}, expected ${spec.sha256}`,
  };
}

/**
 * Checks the file at `path` against `spec`. A missing file is `null`; an unreadable one throws.
 */
export async function verifyGzFile(path: string, spec: IdxFileSpec): Promise<Verification | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return null;
    }
    if (error instanceof Deno.errors.IsADirectory) {
      return { ok: false, reason: "it is a folder, not a file" };
    }
    throw new DataError(`${path}: cannot be read: ${firstLine(error)}`, path, { cause: error });
  }
  return await verifyGzBytes(bytes, spec, { name: path });
}
