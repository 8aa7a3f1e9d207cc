/**
 * Errors of the data pipeline: one line each, naming the file and the fix.
 *
 * @module
 */

/** An error of the data pipeline whose message is one line that names the file and the fix. */
export class DataError extends Error {
  /** The file or folder concerned. */
  readonly path: string;

  /** A one-line `message` about `path`; `cause` keeps the underlying error. */
  constructor(message: string, path: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "DataError";
    this.path = path;
  }
}

/** The `code` of a system error (`ENOSPC`, `EACCES`, ...), or "" when it has none. */
function errorCode(error: unknown): string {
  if (error && typeof error === "object" && "code" in error) {
    return String((error as { code: unknown }).code ?? "");
  }
  return "";
}

/** The first line of an error's message. */
export function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0];
}

/** How to phrase the fix in `fileSystemError` messages. */
export interface FixHint {
  /** How to pick another place (default: "choose another folder with the `dataDir` option or WGTORCH_DATA_DIR"). */
  elsewhere?: string;
  /** How much space is needed, e.g. "about 31 MB" (default: FashionMNIST's). */
  needs?: string;
}

/**
 * Turns a file-system error met while `action` (e.g. "writing", "creating the folder") on
 * `path` into a one-line `DataError` that says what to do. Errors it does not know are wrapped
 * with their first line.
 */
export function fileSystemError(
  error: unknown,
  path: string,
  action: string,
  hint: FixHint = {},
): DataError {
  if (error instanceof DataError) return error;
  const code = errorCode(error);
  const detail = firstLine(error);
  const elsewhere = hint.elsewhere ??
    "choose another folder with the `dataDir` option or WGTORCH_DATA_DIR";
  const needs = hint.needs ?? "FashionMNIST needs about 31 MB";
  let message: string;
  if (code === "ENOSPC" || /no space left/i.test(detail)) {
    message = `${path}: the disk is full (no space left on device while ${action}). ` +
      `Free some space (${needs}) or ${elsewhere}.`;
  } else if (code === "EDQUOT" || /quota exceeded/i.test(detail)) {
    message = `${path}: disk quota exceeded while ${action}. Free some space or ${elsewhere}.`;
  } else if (error instanceof Deno.errors.NotCapable) {
    message = `${path}: Deno was not granted access while ${action}. Run with -A, or ` +
      `--allow-read and --allow-write for this folder.`;
  } else if (
    error instanceof Deno.errors.PermissionDenied || code === "EACCES" || code === "EPERM" ||
    code === "EROFS" || /read-only file system/i.test(detail)
  ) {
    message = `${path}: permission denied while ${action}. Make the folder writable ` +
      `(chmod u+w) or ${elsewhere}.`;
  } else if (error instanceof Deno.errors.NotADirectory || code === "ENOTDIR") {
    message = `${path}: a part of this path is a file, not a folder (while ${action}). ` +
      `Remove or rename that file, or ${elsewhere}.`;
  } else if (error instanceof Deno.errors.AlreadyExists || code === "EEXIST") {
    message = `${path}: exists and is not a folder (while ${action}). Remove or rename it, or ` +
      `${elsewhere}.`;
  } else {
    message = `${path}: ${action} failed: ${detail}`;
  }
  return new DataError(message, path, { cause: error });
}
