/**
 * A small Chrome DevTools Protocol driver for the browser tests: launches headless Chromium on
 * 127.0.0.1 with WebGPU enabled and a temporary profile, opens pages, evaluates expressions
 * (awaiting promises), takes screenshots, and always kills the browser and removes the profile.
 * Needs nothing but Deno's built-in WebSocket.
 *
 * ```ts
 * await withChromium(async (browser) => {
 *   const page = await browser.open("http://127.0.0.1:8000/");
 *   console.log(await page.evaluate("navigator.gpu !== undefined"));
 * });
 * ```
 *
 * @module
 */

/** The names a Chromium or Chrome binary goes by on PATH. */
const BINARIES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];

/** The flags every launch uses: headless, WebGPU on (SwiftShader where there is no GPU). */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless=new",
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--enable-webgpu-developer-features",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-extensions",
  "--remote-debugging-address=127.0.0.1",
  "--remote-debugging-port=0",
];

/** The path of a Chromium binary on PATH (or `CHROMIUM`), else null. */
export function findChromium(): string | null {
  const explicit = Deno.env.get("CHROMIUM");
  if (explicit) return explicit;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of BINARIES) {
      try {
        const path = `${dir}/${name}`;
        if (Deno.statSync(path).isFile) return path;
      } catch { /* not there */ }
    }
  }
  return null;
}

/** Prints why a browser suite is skipped when Chromium is missing; returns whether it is. */
export function skipWithoutChromium(suite: string): boolean {
  if (findChromium()) return false;
  console.warn(
    `${suite}: no Chromium on PATH (apt-get install chromium, or set CHROMIUM=/path); skipped`,
  );
  return true;
}

/** A message from the page's console or an uncaught exception, for failure messages. */
export interface ConsoleLine {
  /** log, warn, error, exception, ... */
  type: string;
  /** The text. */
  text: string;
}

interface Pending {
  resolve: (value: Record<string, unknown>) => void;
  reject: (error: Error) => void;
  method: string;
}

/** One DevTools connection (the browser's websocket), sessions multiplexed by `sessionId`. */
class Connection {
  #socket: WebSocket;
  #next = 1;
  #pending = new Map<number, Pending>();
  #listeners = new Set<
    (method: string, params: Record<string, unknown>, session?: string) => void
  >();
  #closed: Promise<void>;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    this.#closed = new Promise((resolve) => {
      socket.onclose = () => {
        for (const pending of this.#pending.values()) {
          pending.reject(new Error(`DevTools: connection closed during ${pending.method}`));
        }
        this.#pending.clear();
        resolve();
      };
    });
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data));
      if (typeof message.id === "number") {
        const pending = this.#pending.get(message.id);
        if (!pending) return;
        this.#pending.delete(message.id);
        if (message.error) {
          pending.reject(
            new Error(
              `DevTools ${pending.method}: ${message.error.message} ${message.error.data ?? ""}`,
            ),
          );
        } else pending.resolve(message.result ?? {});
      } else if (message.method) {
        for (const listener of this.#listeners) {
          listener(message.method, message.params ?? {}, message.sessionId);
        }
      }
    };
  }

  static async open(url: string): Promise<Connection> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`DevTools: cannot connect to ${url}`));
    });
    return new Connection(socket);
  }

  send(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<Record<string, unknown>> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, method });
      this.#socket.send(JSON.stringify({ id, method, params, sessionId }));
    });
  }

  on(
    listener: (method: string, params: Record<string, unknown>, session?: string) => void,
  ): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#socket.readyState === WebSocket.OPEN) this.#socket.close();
    await Promise.race([this.#closed, new Promise((resolve) => setTimeout(resolve, 1000))]);
  }
}

/** Options of `Page.evaluate`. */
export interface EvaluateOptions {
  /** Milliseconds before giving up (default 120,000). */
  timeoutMs?: number;
}

/** A tab, attached through a flat DevTools session. */
export class Page {
  /** Console lines and uncaught exceptions of the page so far. */
  readonly console: ConsoleLine[] = [];
  #connection: Connection;
  #session: string;
  #targetId: string;
  #unlisten: () => void;
  #loaded: (() => void)[] = [];

  /** @internal Use `Browser.open`. */
  constructor(connection: Connection, session: string, targetId: string, echo: boolean) {
    this.#connection = connection;
    this.#session = session;
    this.#targetId = targetId;
    this.#unlisten = connection.on((method, params, sessionId) => {
      if (sessionId !== session) return;
      if (method === "Runtime.consoleAPICalled") {
        const args = params.args as { value?: unknown; description?: string }[];
        const text = args.map((arg) => String(arg.value ?? arg.description ?? "")).join(" ");
        this.console.push({ type: String(params.type), text });
        if (echo) console.log(`[page ${params.type}] ${text}`);
      } else if (method === "Runtime.exceptionThrown") {
        const details = params.exceptionDetails as {
          text: string;
          exception?: { description?: string };
        };
        const text = `${details.text} ${details.exception?.description ?? ""}`;
        this.console.push({ type: "exception", text });
        if (echo) console.log(`[page exception] ${text}`);
      } else if (method === "Page.loadEventFired") {
        for (const done of this.#loaded.splice(0)) done();
      }
    });
  }

  /** Sends a DevTools command in this page's session. */
  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.#connection.send(method, params, this.#session);
  }

  /** Navigates to `url` and waits for its load event. */
  async goto(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) => this.#loaded.push(resolve));
    const result = await this.send("Page.navigate", { url });
    if (result.errorText) throw new Error(`Page.navigate ${url}: ${result.errorText}`);
    await loaded;
  }

  /**
   * Evaluates a JavaScript expression in the page, awaiting it if it is a promise, and returns
   * its value (JSON-serialisable). A thrown error or rejection becomes an Error here.
   */
  async evaluate<T = unknown>(expression: string, options: EvaluateOptions = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? 120_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`evaluate: no answer after ${timeoutMs} ms: ${expression}`)),
        timeoutMs,
      );
    });
    try {
      const result = await Promise.race([
        this.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true }),
        timeout,
      ]);
      const details = result.exceptionDetails as
        | { text: string; exception?: { description?: string } }
        | undefined;
      if (details) {
        throw new Error(
          `evaluate: ${details.exception?.description ?? details.text}\n(page console:\n${
            this.console.map((line) => `  ${line.type}: ${line.text}`).join("\n")
          })`,
        );
      }
      return (result.result as { value?: T }).value as T;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Polls `expression` until it is truthy; returns its value. */
  async waitFor<T = unknown>(
    expression: string,
    options: EvaluateOptions & { intervalMs?: number } = {},
  ): Promise<T> {
    const deadline = Date.now() + (options.timeoutMs ?? 120_000);
    while (true) {
      const value = await this.evaluate<T>(expression);
      if (value) return value;
      if (Date.now() > deadline) {
        throw new Error(
          `waitFor: ${expression} still false after ${
            options.timeoutMs ?? 120_000
          } ms\n(page console:\n${
            this.console.map((line) => `  ${line.type}: ${line.text}`).join("\n")
          })`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 250));
    }
  }

  /** Sets the viewport (CSS pixels, device scale 1). */
  async setViewport(width: number, height: number): Promise<void> {
    await this.send("Emulation.setDeviceMetricsOverride", {
      width,
      height,
      deviceScaleFactor: 1,
      mobile: false,
    });
  }

  /** A PNG screenshot of the viewport (or, with `fullPage`, of the whole page). */
  async screenshot(options: { fullPage?: boolean } = {}): Promise<Uint8Array> {
    const result = await this.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: options.fullPage ?? false,
    });
    return Uint8Array.from(atob(String(result.data)), (c) => c.charCodeAt(0));
  }

  /** Closes the tab. */
  async close(): Promise<void> {
    this.#unlisten();
    await this.#connection.send("Target.closeTarget", { targetId: this.#targetId }).catch(() => {});
  }
}

/** A running Chromium. */
export class Browser {
  /** e.g. `Chrome/156.0.8078.114`. */
  readonly version: string;
  #connection: Connection;
  #echo: boolean;

  /** @internal Use `launchChromium`. */
  constructor(connection: Connection, version: string, echo: boolean) {
    this.#connection = connection;
    this.version = version;
    this.#echo = echo;
  }

  /** Opens a new tab at `url` and waits for its load event. */
  async open(url: string, viewport?: { width: number; height: number }): Promise<Page> {
    const { targetId } = await this.#connection.send("Target.createTarget", {
      url: "about:blank",
    });
    const { sessionId } = await this.#connection.send("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    const page = new Page(this.#connection, String(sessionId), String(targetId), this.#echo);
    await page.send("Page.enable");
    await page.send("Runtime.enable");
    if (viewport) await page.setViewport(viewport.width, viewport.height);
    await page.goto(url);
    return page;
  }

  /** @internal */
  closeConnection(): Promise<void> {
    return this.#connection.close();
  }

  /** @internal Asks the browser to exit. */
  async quit(): Promise<void> {
    await Promise.race([
      this.#connection.send("Browser.close").catch(() => {}),
      new Promise((resolve) => setTimeout(resolve, 2000)),
    ]);
  }
}

/** Options of `withChromium`. */
export interface LaunchOptions {
  /** Extra command-line flags. */
  flags?: string[];
  /** Print the pages' console lines as they come (default false). */
  echoConsole?: boolean;
  /** Milliseconds to wait for the DevTools endpoint (default 30,000). */
  startTimeoutMs?: number;
}

/** Reads the child's stderr until the DevTools line appears; returns its websocket URL. */
async function devtoolsUrl(stderr: ReadableStream<Uint8Array>, timeoutMs: number): Promise<{
  url: string;
  rest: Promise<void>;
  log: string[];
}> {
  const bytes = stderr.getReader();
  const decoder = new TextDecoder();
  const reader = {
    read: async (): Promise<{ done: boolean; value: string }> => {
      const { done, value } = await bytes.read();
      return { done, value: value ? decoder.decode(value, { stream: true }) : "" };
    },
    cancel: () => bytes.cancel(),
  };
  const log: string[] = [];
  let buffered = "";
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    const match = buffered.match(/DevTools listening on (ws:\/\/\S+)/);
    if (match) {
      log.push(buffered);
      // Keep draining stderr so that the browser never blocks on a full pipe.
      const rest = (async () => {
        while (true) {
          const next = await reader.read().catch(() => ({ done: true, value: "" }));
          if (next.done) return;
          if (log.length < 200) log.push(next.value as string);
        }
      })();
      return { url: match[1], rest, log };
    }
  }
  reader.cancel().catch(() => {});
  throw new Error(`Chromium did not start DevTools within ${timeoutMs} ms:\n${buffered}`);
}

/**
 * Launches headless Chromium with a temporary profile, runs `fn` with it, and always closes the
 * browser, kills its process if it lingers and removes the profile.
 */
export async function withChromium<T>(
  fn: (browser: Browser) => Promise<T>,
  options: LaunchOptions = {},
): Promise<T> {
  const binary = findChromium();
  if (!binary) throw new Error("withChromium: no Chromium on PATH (apt-get install chromium)");
  const profile = await Deno.makeTempDir({ prefix: "wgtorch_chromium_" });
  const child = new Deno.Command(binary, {
    args: [
      ...CHROMIUM_FLAGS,
      `--user-data-dir=${profile}`,
      ...(options.flags ?? []),
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let connection: Connection | null = null;
  let browser: Browser | null = null;
  let drain: Promise<void> | null = null;
  try {
    const started = await devtoolsUrl(child.stderr, options.startTimeoutMs ?? 30_000);
    drain = started.rest;
    connection = await Connection.open(started.url);
    const { product } = await connection.send("Browser.getVersion");
    browser = new Browser(connection, String(product), options.echoConsole ?? false);
    return await fn(browser);
  } finally {
    if (browser) await browser.quit();
    if (connection) await connection.close();
    const exited = await Promise.race([
      child.status.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3000)),
    ]);
    if (!exited) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
    }
    await drain?.catch(() => {});
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/**
 * A static server on 127.0.0.1 (a free port) for the browser tests: `routes` maps paths to
 * contents; `handler` answers the rest. Returns its origin and a `close`.
 */
export function serveRoutes(
  routes: Record<string, { body: string | Uint8Array; type: string }>,
  handler?: (request: Request) => Response | Promise<Response>,
): { origin: string; close: () => Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const path = new URL(request.url).pathname;
    const route = routes[path];
    if (route) {
      return new Response(route.body as BodyInit, {
        headers: { "content-type": route.type, "cache-control": "no-store" },
      });
    }
    if (handler) return handler(request);
    return new Response("not found", { status: 404 });
  });
  const { port } = server.addr as Deno.NetAddr;
  return { origin: `http://127.0.0.1:${port}`, close: () => server.shutdown() };
}

/** Bundles `entry` for the browser (ESM) and returns the JavaScript. */
export async function bundleForBrowser(
  entry: string,
  options: { importMap?: string; cwd?: string } = {},
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "wgtorch_browser_bundle_" });
  try {
    const out = `${dir}/bundle.js`;
    const args = ["bundle", "--platform", "browser", "--format", "esm", "--quiet"];
    if (options.importMap) args.push("--import-map", options.importMap);
    args.push(entry, "--output", out);
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: options.cwd,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new Error(`deno bundle ${entry} failed:\n${new TextDecoder().decode(stderr)}`);
    }
    return await Deno.readTextFile(out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** What `pngStats` finds in a PNG: its size and how much its pixels vary. */
export interface PngStats {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Distinct pixel colours among a sample (capped at 4096). */
  distinctColours: number;
  /** Fraction of pixels that differ from the most common colour. */
  nonBackground: number;
}

/**
 * Decodes an 8-bit RGB/RGBA non-interlaced PNG (what Chromium's screenshots are): inflates the
 * IDAT chunks with DecompressionStream("deflate"), undoes the row filters and counts colours.
 */
export async function pngStats(png: Uint8Array): Promise<PngStats> {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const signature = [137, 80, 78, 71, 13, 10, 26, 10];
  if (!signature.every((byte, i) => png[i] === byte)) throw new Error("pngStats: not a PNG");
  let offset = 8;
  let width = 0, height = 0, colourType = 0, bitDepth = 0, interlace = 0;
  const idat: Uint8Array[] = [];
  while (offset < png.length) {
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...png.subarray(offset + 4, offset + 8));
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === "IHDR") {
      width = view.getUint32(offset + 8);
      height = view.getUint32(offset + 12);
      bitDepth = data[8];
      colourType = data[9];
      interlace = data[12];
    } else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    offset += 12 + length;
  }
  const channels = colourType === 6 ? 4 : colourType === 2 ? 3 : 0;
  if (bitDepth !== 8 || channels === 0 || interlace !== 0) {
    throw new Error(
      `pngStats: only 8-bit RGB/RGBA non-interlaced PNGs (bit depth ${bitDepth}, colour type ${colourType})`,
    );
  }
  const inflated = new Uint8Array(
    await new Response(
      new Blob(idat as BlobPart[]).stream().pipeThrough(new DecompressionStream("deflate")),
    ).arrayBuffer(),
  );
  const stride = width * channels;
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = inflated[y * (stride + 1)];
    const row = inflated.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] : 0;
      let predictor = 0;
      if (filter === 1) predictor = a;
      else if (filter === 2) predictor = b;
      else if (filter === 3) predictor = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      pixels[y * stride + x] = (row[x] + predictor) & 255;
    }
  }
  const counts = new Map<number, number>();
  for (let p = 0; p < width * height; p++) {
    const i = p * channels;
    const colour = (pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2];
    if (counts.size < 4096 || counts.has(colour)) counts.set(colour, (counts.get(colour) ?? 0) + 1);
  }
  const most = Math.max(...counts.values());
  return {
    width,
    height,
    distinctColours: counts.size,
    nonBackground: 1 - most / (width * height),
  };
}

/** Runs `python args...`; throws with its stderr when it fails. */
export async function askTorchPath(python: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(python, { args, stdout: "null", stderr: "piped" })
    .output();
  if (code !== 0) {
    throw new Error(`${python} ${args.join(" ")}:\n${new TextDecoder().decode(stderr)}`);
  }
}
