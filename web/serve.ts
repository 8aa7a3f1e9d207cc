/**
 * `deno task web`: bundles the training page's module (web/app.ts) for the browser, finds
 * FashionMNIST (the cache, else the system copy, else a download: as the CLI does), and serves
 * the page, the bundle and the four IDX files on 127.0.0.1, then prints the URL.
 *
 * ```sh
 * deno task web                 # a free port
 * deno task web --port 8080
 * deno task web --data-dir DIR  # FashionMNIST from DIR (as the CLI's --data-dir)
 * ```
 *
 * Open the URL in a browser with WebGPU (Chrome/Edge 113+, Firefox 141+ on Windows, Safari 26);
 * `?steps=200&batch=64&autostart=1` is the quick mode.
 *
 * @module
 */

import { ensureFashionMnist, FASHION_MNIST_FILES, IDX_FILE_KEYS } from "../data/mod.ts";

const HERE = new URL("./", import.meta.url);

/** Options of `startWebServer`. */
export interface WebServerOptions {
  /** Port (default 0: a free one). */
  port?: number;
  /** Host name (default 127.0.0.1). */
  hostname?: string;
  /** FashionMNIST's folder, as the CLI's `--data-dir` (default the cache / system copy). */
  dataDir?: string;
  /** Whether to download FashionMNIST when it is missing (default true). */
  download?: boolean;
}

/** A running page server. */
export interface WebServer {
  /** The page's URL, e.g. `http://127.0.0.1:8080/`. */
  url: string;
  /** Stops serving. */
  close: () => Promise<void>;
}

/** Bundles web/app.ts for the browser (ESM) and returns the JavaScript. */
export async function bundleApp(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "wgtorch_web_" });
  try {
    const out = `${dir}/app.js`;
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        "--platform",
        "browser",
        "--format",
        "esm",
        new URL("app.ts", HERE).pathname,
        "--output",
        out,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new Error(`deno bundle web/app.ts failed:\n${new TextDecoder().decode(stderr)}`);
    }
    return await Deno.readTextFile(out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Bundles the page, locates FashionMNIST and serves both; resolves once listening. */
export async function startWebServer(options: WebServerOptions = {}): Promise<WebServer> {
  const [bundle, location] = await Promise.all([
    bundleApp(),
    ensureFashionMnist({
      dataDir: options.dataDir,
      download: options.download ?? true,
      progress: "none",
      log: (line) => console.error(line),
    }),
  ]);
  const html = await Deno.readTextFile(new URL("index.html", HERE));
  const files = new Map<string, string>();
  for (const key of IDX_FILE_KEYS) {
    files.set(FASHION_MNIST_FILES[key].name, location.files[key].path);
  }
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    onListen: (addr) => listening.resolve(addr as Deno.NetAddr),
  }, async (request) => {
    const path = new URL(request.url).pathname;
    const text = (body: string, type: string) =>
      new Response(body, { headers: { "content-type": type, "cache-control": "no-store" } });
    if (path === "/" || path === "/index.html") return text(html, "text/html; charset=utf-8");
    if (path === "/app.js") return text(bundle, "text/javascript; charset=utf-8");
    const file = path.startsWith("/data/") ? files.get(path.slice("/data/".length)) : undefined;
    if (file) {
      const handle = await Deno.open(file);
      return new Response(handle.readable, {
        headers: { "content-type": "application/gzip", "cache-control": "max-age=3600" },
      });
    }
    return new Response(`not found: ${path}`, { status: 404 });
  });
  const addr = await listening.promise;
  return {
    url: `http://${addr.hostname}:${addr.port}/`,
    close: () => server.shutdown(),
  };
}

function parseArgs(args: readonly string[]): WebServerOptions {
  const options: WebServerOptions = {};
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split("=", 2);
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`web: ${flag} needs a value`);
      return v;
    };
    if (flag === "--port") {
      const port = Number(value());
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new Error(`web: --port must be an integer in 0..65535, got ${args[i]}`);
      }
      options.port = port;
    } else if (flag === "--host") options.hostname = value();
    else if (flag === "--data-dir") options.dataDir = value();
    else if (flag === "--offline") options.download = false;
    else if (flag === "--help" || flag === "-h") {
      console.log(
        "deno task web [--port N] [--host 127.0.0.1] [--data-dir DIR] [--offline]\n" +
          "Serves the browser training page; open the printed URL in a WebGPU browser.\n" +
          "Quick mode: add ?steps=200&batch=64&autostart=1 to the URL.",
      );
      Deno.exit(0);
    } else throw new Error(`web: unknown argument ${args[i]} (try --help)`);
  }
  return options;
}

if (import.meta.main) {
  try {
    const server = await startWebServer(parseArgs(Deno.args));
    console.log(`wgtorch training page: ${server.url}`);
    console.log(`quick mode:            ${server.url}?steps=200&batch=64&autostart=1`);
    console.log("(Chrome/Edge 113+, Firefox 141+ on Windows, Safari 26; Ctrl-C stops)");
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  }
}
