/**
 * A 5x7 bitmap font (upper-case letters, digits and a little punctuation) to write labels into
 * PNG figures without any font library. Lower case is drawn as upper case.
 *
 * @module
 */

/** Width of a glyph in pixels (plus one column of spacing when drawn). */
export const GLYPH_WIDTH = 5;
/** Height of a glyph in pixels. */
export const GLYPH_HEIGHT = 7;

const GLYPHS: Record<string, string> = {
  "A": ".###. #...# #...# ##### #...# #...# #...#",
  "B": "####. #...# #...# ####. #...# #...# ####.",
  "C": ".###. #...# #.... #.... #.... #...# .###.",
  "D": "###.. #..#. #...# #...# #...# #..#. ###..",
  "E": "##### #.... #.... ####. #.... #.... #####",
  "F": "##### #.... #.... ####. #.... #.... #....",
  "G": ".###. #...# #.... #.### #...# #...# .####",
  "H": "#...# #...# #...# ##### #...# #...# #...#",
  "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
  "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
  "L": "#.... #.... #.... #.... #.... #.... #####",
  "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
  "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
  "O": ".###. #...# #...# #...# #...# #...# .###.",
  "P": "####. #...# #...# ####. #.... #.... #....",
  "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
  "R": "####. #...# #...# ####. #.#.. #..#. #...#",
  "S": ".#### #.... #.... .###. ....# ....# ####.",
  "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  "U": "#...# #...# #...# #...# #...# #...# .###.",
  "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
  "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
  "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
  "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
  "Z": "##### ....# ...#. ..#.. .#... #.... #####",
  "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
  "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
  "2": ".###. #...# ....# ...#. ..#.. .#... #####",
  "3": "####. ....# ....# .###. ....# ....# ####.",
  "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
  "5": "##### #.... ####. ....# ....# #...# .###.",
  "6": "..##. .#... #.... ####. #...# #...# .###.",
  "7": "##### ....# ...#. ..#.. .#... .#... .#...",
  "8": ".###. #...# #...# .###. #...# #...# .###.",
  "9": ".###. #...# #...# .#### ....# ...#. .##..",
  "/": "..... ....# ...#. ..#.. .#... #.... .....",
  "-": "..... ..... ..... ##### ..... ..... .....",
  "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
  ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
  ".": "..... ..... ..... ..... ..... .##.. .##..",
  ":": "..... .##.. .##.. ..... .##.. .##.. .....",
  " ": "..... ..... ..... ..... ..... ..... .....",
  "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
};

/** The rows of a character's glyph as strings of `#` and `.` (unknown characters: `?`). */
export function glyph(char: string): string[] {
  return (GLYPHS[char.toUpperCase()] ?? GLYPHS["?"]).split(" ");
}

/** Width in pixels of `text` drawn at `scale` (one pixel column between glyphs). */
export function textWidth(text: string, scale = 1): number {
  return text.length === 0 ? 0 : (text.length * (GLYPH_WIDTH + 1) - 1) * scale;
}

/**
 * Draws `text` into an RGB raster (`width` pixels wide) with its top-left corner at (x, y), in
 * `color`, each font pixel a `scale` x `scale` square. Pixels outside the raster are skipped.
 */
export function drawText(
  raster: { data: Uint8Array; width: number; height: number },
  text: string,
  at: { x: number; y: number; color: readonly [number, number, number]; scale?: number },
): void {
  const scale = at.scale ?? 1;
  for (let c = 0; c < text.length; c++) {
    const rows = glyph(text[c]);
    const left = at.x + c * (GLYPH_WIDTH + 1) * scale;
    for (let gy = 0; gy < GLYPH_HEIGHT; gy++) {
      for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
        if (rows[gy][gx] !== "#") continue;
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const px = left + gx * scale + dx, py = at.y + gy * scale + dy;
            if (px < 0 || py < 0 || px >= raster.width || py >= raster.height) continue;
            raster.data.set(at.color, (py * raster.width + px) * 3);
          }
        }
      }
    }
  }
}
