/**
 * `predict`'s image reader refuses damaged and oversized files with a message naming the file:
 * chunk CRCs, the zlib stream, truncation, and dimensions (checked before any pixel memory).
 */

import { deepEqual, match, rejects } from "node:assert/strict";
import { crc32 } from "node:zlib";
import { encodePng } from "../../data/png.ts";
import { decodePng, MAX_IMAGE_SIDE, readImage28 } from "../../cli/image.ts";
import { join } from "node:path";

const PIXELS = Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 37) % 256);

async function png(): Promise<Uint8Array> {
  return await encodePng({ width: 28, height: 28, channels: 1, data: PIXELS });
}

/** Offset of the first chunk of `type`. */
function chunkAt(bytes: Uint8Array, type: string): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  for (let at = 8; at < bytes.length; at += 12 + view.getUint32(at)) {
    if (String.fromCharCode(...bytes.subarray(at + 4, at + 8)) === type) return at;
  }
  throw new Error(`no ${type} chunk`);
}

/** A PNG of only a signature, an IHDR of `width` x `height` (8-bit grey) and an IEND. */
function headerOnly(width: number, height: number): Uint8Array {
  const chunk = (type: string, body: Uint8Array) => {
    const out = new Uint8Array(12 + body.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, body.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(body, 8);
    view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr[8] = 8;
  const parts = [
    Uint8Array.of(137, 80, 78, 71, 13, 10, 26, 10),
    chunk("IHDR", ihdr),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

Deno.test("decodePng reads a valid PNG", async () => {
  deepEqual((await decodePng(await png(), "ok.png")).pixels, PIXELS);
});

Deno.test("decodePng refuses a chunk whose CRC does not match, naming the file", async () => {
  const bytes = await png();
  bytes[chunkAt(bytes, "IDAT") + 10] ^= 0x01;
  await rejects(
    decodePng(bytes, "bad.png"),
    /bad\.png: corrupt PNG \(CRC mismatch in chunk "IDAT"\)/,
  );
  const header = await png();
  header[chunkAt(header, "IHDR") + 20] ^= 0x01; // the CRC itself
  await rejects(decodePng(header, "bad.png"), /CRC mismatch in chunk "IHDR"/);
});

Deno.test("decodePng refuses image data whose zlib checksum is wrong", async () => {
  const bytes = await png();
  const at = chunkAt(bytes, "IDAT");
  const view = new DataView(bytes.buffer);
  const length = view.getUint32(at);
  bytes[at + 8 + length - 1] ^= 0xff; // last byte of the Adler-32, then a valid chunk CRC
  view.setUint32(at + 8 + length, crc32(bytes.subarray(at + 4, at + 8 + length)));
  await rejects(decodePng(bytes, "adler.png"), /adler\.png: corrupt PNG image data \(zlib/);
});

Deno.test("decodePng refuses truncated files", async () => {
  const bytes = await png();
  await rejects(
    decodePng(bytes.subarray(0, chunkAt(bytes, "IDAT") + 20), "cut.png"),
    /cut\.png: truncated PNG/,
  );
  await rejects(decodePng(bytes.subarray(0, chunkAt(bytes, "IEND")), "cut.png"), /no IEND chunk/);
});

Deno.test("images larger than the bound are refused before their pixels are allocated", async () => {
  await rejects(
    decodePng(headerOnly(16000, 16000), "huge.png"),
    /huge\.png: the image is 16000x16000 pixels: expected 1 to 4096 a side/,
  );
  await rejects(decodePng(headerOnly(MAX_IMAGE_SIDE + 1, 1), "wide.png"), /4097x1 pixels/);
  const dir = await Deno.makeTempDir();
  const pgm = join(dir, "huge.pgm");
  await Deno.writeFile(pgm, new TextEncoder().encode("P5\n20000 20000\n255\n"));
  await rejects(readImage28(pgm), (error: Error) => {
    match(error.message, /huge\.pgm: the image is 20000x20000 pixels/);
    return true;
  });
});

Deno.test("PGM pixels above maxval or not numbers are refused, naming the file", async () => {
  const dir = await Deno.makeTempDir();
  const write = async (name: string, bytes: Uint8Array) => {
    const path = join(dir, name);
    await Deno.writeFile(path, bytes);
    return path;
  };
  const text = (s: string) => new TextEncoder().encode(s);
  const ok = await write("ok.pgm", text("P2\n2 1\n100\n0 100\n"));
  deepEqual(Array.from((await readImage28(ok)).pixels.slice(0, 1)), [0]);
  await rejects(
    readImage28(await write("high.pgm", text("P2\n2 1\n100\n0 200\n"))),
    /high\.pgm: PGM pixel 1 is 200: expected 0 to maxval 100/,
  );
  await rejects(
    readImage28(await write("word.pgm", text("P2\n2 1\n255\n0 abc\n"))),
    /word\.pgm: PGM pixel 1 is NaN/,
  );
  const binary = new Uint8Array([...text("P5\n2 1\n100\n"), 0, 250]);
  await rejects(readImage28(await write("bin.pgm", binary)), /bin\.pgm: PGM pixel 1 is 250/);
  await rejects(
    readImage28(await write("photo.jpg", Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 0, 16))),
    /photo\.jpg: not a PNG or PGM file/,
  );
});

Deno.test("image data that inflates past what the header declares is refused", async () => {
  const tall = await encodePng({
    width: 28,
    height: 56,
    channels: 1,
    data: new Uint8Array(28 * 56),
  });
  const at = chunkAt(tall, "IHDR");
  const view = new DataView(tall.buffer);
  view.setUint32(at + 12, 28); // height 56 → 28, with a matching CRC
  view.setUint32(at + 8 + 13, crc32(tall.subarray(at + 4, at + 8 + 13)));
  await rejects(
    decodePng(tall, "tall.png"),
    /tall\.png: corrupt PNG: its image data inflates past 812 bytes/,
  );
});
