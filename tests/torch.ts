/**
 * PyTorch as a test oracle: `torchPython` is Debian's `/usr/bin/python3` when it imports `torch`
 * (installed by `.ci/run`), else null, and the suites that need it skip with a printed reason.
 * `askTorch(script, request)` runs a script from `tests/pytorch/` with `request` as JSON on stdin
 * and returns its JSON stdout. NaN, Infinity and -Infinity travel as the strings "NaN",
 * "Infinity" and "-Infinity" both ways (JSON has no such numbers).
 *
 * @module
 */

const PYTHON = "/usr/bin/python3";

/** The python that imports torch, or null. */
export const torchPython: string | null = await (async () => {
  try {
    const { code } = await new Deno.Command(PYTHON, {
      args: ["-c", "import torch"],
      stdout: "null",
      stderr: "null",
    }).output();
    return code === 0 ? PYTHON : null;
  } catch {
    return null; // no python3, or no subprocesses at all (the browser test pages)
  }
})();

/** Prints why a suite that needs PyTorch is skipped (once per suite); returns whether it is. */
export function skipWithoutTorch(suite: string): boolean {
  if (torchPython) return false;
  console.warn(
    `${suite}: PyTorch is not importable by ${PYTHON} (apt-get install python3-torch); skipped`,
  );
  return true;
}

function encode(_key: string, value: unknown): unknown {
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(
      value as unknown as ArrayLike<number>,
      (v) => Number.isFinite(v) ? v : String(v),
    );
  }
  return value;
}

function decode(_key: string, value: unknown): unknown {
  if (value === "NaN") return NaN;
  if (value === "Infinity") return Infinity;
  if (value === "-Infinity") return -Infinity;
  return value;
}

/**
 * Runs `tests/pytorch/<script>` with `request` on stdin (typed arrays become lists) and returns
 * its JSON answer. Throws with the script's stderr when it fails.
 */
export async function askTorch<Answer = Record<string, unknown>>(
  script: string,
  request: unknown,
): Promise<Answer> {
  if (!torchPython) throw new Error("askTorch: PyTorch is not available");
  // A file URL's path (no node:url: the browser test pages bundle this module too).
  const path = decodeURIComponent(new URL(`./pytorch/${script}`, import.meta.url).pathname);
  const child = new Deno.Command(torchPython, {
    args: [path],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { OMP_NUM_THREADS: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(request, encode)));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) {
    throw new Error(`${script} failed (exit ${code}):\n${new TextDecoder().decode(stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(stdout), decode) as Answer;
}
