/**
 * Small, dependency-free SVG line charts: panels side by side in one figure, each with axes,
 * round tick values, a title, a legend and any number of series (solid or dashed, with markers).
 * Enough for training curves and tuning plots; the output is plain SVG 1.1 that browsers,
 * GitHub and Markdown viewers render.
 *
 * @module
 */

/** One line of a panel. */
export interface Series {
  /** Legend text. */
  name: string;
  /** (x, y) points in order; non-finite values break the line. */
  points: readonly (readonly [number, number])[];
  /** Stroke colour (default: the palette by position). */
  color?: string;
  /** Dashed stroke. */
  dashed?: boolean;
  /** Stroke width (default 2). */
  width?: number;
  /** Opacity (default 1). */
  opacity?: number;
  /** A marker on the last point: a cross (e.g. a stopped trial) or a dot. */
  endMarker?: "cross" | "dot";
  /** Leave out of the legend. */
  noLegend?: boolean;
  /**
   * A shaded band under the line: (x, low, high) per point, drawn as a filled polygon in the
   * series' colour (e.g. the min-max over seeds).
   */
  band?: readonly (readonly [number, number, number])[];
}

/** One chart. */
export interface Panel {
  /** Title above the chart. */
  title: string;
  /** Label of the x axis. */
  xLabel: string;
  /** Label of the y axis. */
  yLabel: string;
  /** The lines. */
  series: readonly Series[];
  /** Force the y range (otherwise from the data, padded). */
  yMin?: number;
  /** Force the y range (otherwise from the data, padded). */
  yMax?: number;
  /** Integer x ticks only (epochs). Default true. */
  integerX?: boolean;
  /** Where the legend goes (default `top-right` of the plot area). */
  legend?: "top-right" | "bottom-right" | "none";
  /** Extra lines of small text under the plot (e.g. a key). */
  notes?: readonly string[];
}

/** Options of `renderFigure`. */
export interface FigureOptions {
  /** A title over all panels. */
  title?: string;
  /** Width of each panel in px (default 460). */
  panelWidth?: number;
  /** Height of each panel's plot area plus axes, in px (default 320). */
  panelHeight?: number;
}

/** The colours used for series without their own (Tableau 10). */
export const PALETTE: readonly string[] = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

const MARGIN = { left: 62, right: 16, top: 34, bottom: 46 };
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

/** Escapes text for SVG. */
export function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/** About `count` round tick values covering [min, max] (steps of 1, 2, 2.5 or 5 × 10^k). */
function niceTicks(min: number, max: number, count = 5, integer = false): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  if (integer) step = Math.max(1, Math.round(step));
  const ticks: number[] = [];
  const start = Math.ceil(min / step - 1e-9) * step;
  for (let value = start; value <= max + step * 1e-9; value += step) {
    ticks.push(Math.abs(value) < step * 1e-9 ? 0 : value);
  }
  return ticks;
}

function tickLabel(value: number, ticks: readonly number[]): string {
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : Math.abs(value) || 1;
  const decimals = Math.max(
    0,
    Math.min(6, -Math.floor(Math.log10(step) + 1e-9) + (step % 1 ? 1 : 0)),
  );
  const text = value.toFixed(Number.isInteger(step) ? 0 : decimals);
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
}

function extent(values: number[], low?: number, high?: number): [number, number] {
  const finite = values.filter(Number.isFinite);
  let min = low ?? (finite.length ? Math.min(...finite) : 0);
  let max = high ?? (finite.length ? Math.max(...finite) : 1);
  if (!(max > min)) {
    const pad = Math.abs(min) * 0.1 || 0.5;
    min -= pad;
    max += pad;
  } else if (low === undefined || high === undefined) {
    const pad = (max - min) * 0.06;
    if (low === undefined) min -= pad;
    if (high === undefined) max += pad;
  }
  return [min, max];
}

function f(value: number): string {
  return (Math.round(value * 10) / 10).toString();
}

function renderPanel(panel: Panel, x0: number, y0: number, width: number, height: number): string {
  const parts: string[] = [];
  const integerX = panel.integerX ?? true;
  const allX = panel.series.flatMap((s) => s.points.map((p) => p[0]));
  const allY = panel.series.flatMap((s) => [
    ...s.points.map((p) => p[1]),
    ...(s.band ?? []).flatMap((b) => [b[1], b[2]]),
  ]);
  let [xMin, xMax] = extent(allX);
  if (integerX) {
    const finite = allX.filter(Number.isFinite);
    xMin = finite.length ? Math.min(...finite) : 0;
    xMax = finite.length ? Math.max(...finite) : 1;
    if (xMax === xMin) {
      xMin -= 1;
      xMax += 1;
    }
    const pad = (xMax - xMin) * 0.03;
    xMin -= pad;
    xMax += pad;
  }
  const [yMin, yMax] = extent(allY, panel.yMin, panel.yMax);
  const left = x0 + MARGIN.left, top = y0 + MARGIN.top;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const sx = (x: number) => left + ((x - xMin) / (xMax - xMin)) * plotW;
  const sy = (y: number) => top + plotH - ((y - yMin) / (yMax - yMin)) * plotH;
  parts.push(
    `<text x="${f(x0 + width / 2)}" y="${f(y0 + 20)}" text-anchor="middle" font-size="14" ` +
      `font-weight="bold" ${FONT}>${escapeXml(panel.title)}</text>`,
  );
  parts.push(
    `<rect x="${f(left)}" y="${f(top)}" width="${f(plotW)}" height="${f(plotH)}" ` +
      `fill="#ffffff" stroke="#444" stroke-width="1"/>`,
  );
  const xTicks = niceTicks(xMin, xMax, Math.min(10, Math.max(2, Math.round(plotW / 60))), integerX)
    .filter((t) => t >= xMin && t <= xMax);
  const yTicks = niceTicks(yMin, yMax, 6).filter((t) => t >= yMin && t <= yMax);
  for (const t of xTicks) {
    const x = f(sx(t));
    parts.push(
      `<line x1="${x}" y1="${f(top)}" x2="${x}" y2="${f(top + plotH)}" stroke="#e6e6e6"/>`,
    );
    parts.push(
      `<text x="${x}" y="${f(top + plotH + 16)}" text-anchor="middle" font-size="11" ${FONT}>` +
        `${tickLabel(t, xTicks)}</text>`,
    );
  }
  for (const t of yTicks) {
    const y = f(sy(t));
    parts.push(
      `<line x1="${f(left)}" y1="${y}" x2="${f(left + plotW)}" y2="${y}" stroke="#e6e6e6"/>`,
    );
    parts.push(
      `<text x="${f(left - 6)}" y="${f(sy(t) + 4)}" text-anchor="end" font-size="11" ${FONT}>` +
        `${tickLabel(t, yTicks)}</text>`,
    );
  }
  parts.push(
    `<text x="${f(left + plotW / 2)}" y="${f(top + plotH + 36)}" text-anchor="middle" ` +
      `font-size="12" ${FONT}>${escapeXml(panel.xLabel)}</text>`,
  );
  const yLabelX = x0 + 16, yLabelY = top + plotH / 2;
  parts.push(
    `<text x="${f(yLabelX)}" y="${f(yLabelY)}" text-anchor="middle" font-size="12" ` +
      `transform="rotate(-90 ${f(yLabelX)} ${f(yLabelY)})" ${FONT}>${
        escapeXml(panel.yLabel)
      }</text>`,
  );
  panel.series.forEach((series, index) => {
    const color = series.color ?? PALETTE[index % PALETTE.length];
    const width = series.width ?? 2;
    const opacity = series.opacity ?? 1;
    const dash = series.dashed ? ` stroke-dasharray="6 4"` : "";
    let path = "";
    let pen = false;
    const finite = series.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    for (const [x, y] of series.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        pen = false;
        continue;
      }
      path += `${pen ? "L" : "M"}${f(sx(x))},${f(sy(Math.min(yMax, Math.max(yMin, y))))}`;
      pen = true;
    }
    const band = (series.band ?? []).filter((b) => b.every(Number.isFinite));
    if (band.length > 0) {
      const clamp = (y: number) => sy(Math.min(yMax, Math.max(yMin, y)));
      const upper = band.map(([x, , high]) => `${f(sx(x))},${f(clamp(high))}`);
      const lower = [...band].reverse().map(([x, low]) => `${f(sx(x))},${f(clamp(low))}`);
      parts.push(
        `<path class="band" d="M${[...upper, ...lower].join("L")}Z" fill="${color}" ` +
          `fill-opacity="0.18" stroke="none"/>`,
      );
    }
    const style = `stroke="${color}" stroke-width="${width}" opacity="${opacity}"`;
    if (path) parts.push(`<path d="${path}" fill="none" ${style}${dash}/>`);
    if (finite.length <= 40) {
      for (const [x, y] of finite) {
        parts.push(
          `<circle cx="${f(sx(x))}" cy="${f(sy(Math.min(yMax, Math.max(yMin, y))))}" ` +
            `r="${width + 0.5}" fill="${color}" opacity="${opacity}"/>`,
        );
      }
    }
    const last = finite.at(-1);
    if (last && series.endMarker === "cross") {
      const cx = sx(last[0]), cy = sy(Math.min(yMax, Math.max(yMin, last[1]))), r = 4.5;
      parts.push(
        `<path d="M${f(cx - r)},${f(cy - r)}L${f(cx + r)},${f(cy + r)}M${f(cx - r)},${f(cy + r)}` +
          `L${f(cx + r)},${f(cy - r)}" stroke="${color}" stroke-width="2" opacity="${opacity}"/>`,
      );
    }
  });
  const legendItems = panel.series.map((s, i) => ({ s, i })).filter(({ s }) => !s.noLegend);
  const legend = panel.legend ?? "top-right";
  if (legend !== "none" && legendItems.length > 0) {
    const rowH = 16;
    const textW = Math.max(...legendItems.map(({ s }) => s.name.length)) * 6.6 + 34;
    const boxH = legendItems.length * rowH + 8;
    const boxX = left + plotW - textW - 8;
    const boxY = legend === "top-right" ? top + 8 : top + plotH - boxH - 8;
    parts.push(
      `<rect x="${f(boxX)}" y="${f(boxY)}" width="${f(textW)}" height="${f(boxH)}" ` +
        `fill="#ffffff" fill-opacity="0.85" stroke="#bbb"/>`,
    );
    legendItems.forEach(({ s, i }, row) => {
      const color = s.color ?? PALETTE[i % PALETTE.length];
      const y = boxY + 4 + rowH * row + rowH / 2;
      const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
      parts.push(
        `<line x1="${f(boxX + 6)}" y1="${f(y)}" x2="${f(boxX + 26)}" y2="${
          f(y)
        }" stroke="${color}" ` +
          `stroke-width="${s.width ?? 2}"${dash}/>`,
      );
      parts.push(
        `<text x="${f(boxX + 30)}" y="${f(y + 4)}" font-size="11" ${FONT}>${
          escapeXml(s.name)
        }</text>`,
      );
    });
  }
  (panel.notes ?? []).forEach((note, row) => {
    parts.push(
      `<text x="${f(left)}" y="${
        f(top + plotH + 52 + row * 14)
      }" font-size="10.5" fill="#444" ${FONT}>` +
        `${escapeXml(note)}</text>`,
    );
  });
  return parts.join("\n");
}

/** One SVG document with `panels` side by side. */
export function renderFigure(panels: readonly Panel[], options: FigureOptions = {}): string {
  const width = options.panelWidth ?? 460;
  const height = options.panelHeight ?? 320;
  const titleH = options.title ? 28 : 0;
  const notesH = Math.max(
    0,
    ...panels.map((p) => (p.notes?.length ?? 0) * 14 + (p.notes?.length ? 12 : 0)),
  );
  const totalW = width * panels.length;
  const totalH = titleH + height + notesH;
  const body = panels.map((panel, i) => renderPanel(panel, i * width, titleH, width, height));
  const title = options.title
    ? `<text x="${f(totalW / 2)}" y="20" text-anchor="middle" font-size="16" font-weight="bold" ` +
      `${FONT}>${escapeXml(options.title)}</text>\n`
    : "";
  return `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${totalW}" height="${totalH}" ` +
    `viewBox="0 0 ${totalW} ${totalH}">\n<rect width="100%" height="100%" fill="#ffffff"/>\n` +
    title + body.join("\n") + "\n</svg>\n";
}
