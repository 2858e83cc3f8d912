/**
 * The loss curve of a run as a PNG, drawn in Node with no dependencies: the quality bands as coloured stripes, the
 * step losses as a line, axis ticks labelled with a 3×5 pixel font. Small (a few KiB), far under every upload limit.
 */
import { deflateSync } from 'node:zlib';
import { bandFor } from '../shared/tables.ts';

type RGB = readonly [number, number, number];

const WIDTH = 640;
const HEIGHT = 320;
const MARGIN = { left: 44, right: 12, top: 12, bottom: 28 };
/** A band's stripe colour, from its row in bands.json. */
const rgb = (hex: string): RGB => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as unknown as RGB;
/** One colour per curve: blue, then orange (for /models compare), then green and purple. */
const LINES: readonly RGB[] = [
  [30, 80, 200],
  [230, 120, 20],
  [40, 150, 60],
  [140, 60, 170],
];
const AXIS: RGB = [60, 60, 60];
const GRID: RGB = [200, 200, 200];

// 3×5 glyphs, one row of three bits per line, for the characters axis labels need.
const FONT: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7],
  '1': [2, 6, 2, 2, 7],
  '2': [7, 1, 7, 4, 7],
  '3': [7, 1, 7, 1, 7],
  '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7],
  '6': [7, 4, 7, 5, 7],
  '7': [7, 1, 1, 1, 1],
  '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 7],
  '.': [0, 0, 0, 0, 2],
  '-': [0, 0, 7, 0, 0],
};

class Canvas {
  readonly pixels = Buffer.alloc(WIDTH * HEIGHT * 3, 255);

  set(x: number, y: number, c: RGB): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= WIDTH || y >= HEIGHT) return;
    const i = (y * WIDTH + x) * 3;
    this.pixels[i] = c[0];
    this.pixels[i + 1] = c[1];
    this.pixels[i + 2] = c[2];
  }

  rect(x0: number, y0: number, x1: number, y1: number, c: RGB): void {
    for (let y = Math.round(Math.min(y0, y1)); y <= Math.round(Math.max(y0, y1)); y++) {
      for (let x = Math.round(Math.min(x0, x1)); x <= Math.round(Math.max(x0, x1)); x++) this.set(x, y, c);
    }
  }

  /** A line two pixels wide. */
  line(x0: number, y0: number, x1: number, y1: number, c: RGB): void {
    const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
    for (let i = 0; i <= n; i++) {
      const x = x0 + ((x1 - x0) * i) / n;
      const y = y0 + ((y1 - y0) * i) / n;
      this.set(x, y, c);
      this.set(x, y + 1, c);
    }
  }

  text(x: number, y: number, s: string, c: RGB, scale = 2): void {
    for (const ch of s) {
      const glyph = FONT[ch];
      if (glyph) {
        glyph.forEach((row, gy) => {
          for (let gx = 0; gx < 3; gx++)
            if (row & (4 >> gx))
              this.rect(x + gx * scale, y + gy * scale, x + gx * scale + scale - 1, y + gy * scale + scale - 1, c);
        });
      }
      x += 4 * scale;
    }
  }
}

const textWidth = (s: string, scale = 2) => s.length * 4 * scale - scale;

/** A "nice" tick step near range/count: 1, 2 or 5 times a power of ten. */
function niceStep(range: number, count: number): number {
  const raw = range / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
}

export interface LossSeries {
  losses: readonly (number | null)[];
  /** The step of the first loss. */
  firstStep?: number;
}

export function renderLossCurve(losses: readonly (number | null)[], firstStep = 1): Buffer {
  return renderLossCurves([{ losses, firstStep }]);
}

/** Several runs' curves on one set of axes, each in its own colour (LINES, in order). */
export function renderLossCurves(series: readonly LossSeries[]): Buffer {
  const canvas = new Canvas();
  const curves = series.map((c) =>
    c.losses
      .map((l, i) => ({ step: (c.firstStep ?? 1) + i, loss: l }))
      .filter((p): p is { step: number; loss: number } => p.loss !== null && Number.isFinite(p.loss)),
  );
  const points = curves.flat();
  const firstStep = Math.min(...series.map((c) => c.firstStep ?? 1));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const maxLoss = Math.max(1.2, ...points.map((p) => p.loss)) * 1.05;
  const lastStep = Math.max(firstStep + 1, ...points.map((p) => p.step));
  const px = (step: number) => MARGIN.left + ((step - firstStep) / (lastStep - firstStep)) * plotW;
  const py = (loss: number) => MARGIN.top + plotH - (Math.max(0, loss) / maxLoss) * plotH;

  // bands as stripes, one pixel row at a time, from the one table that decides them
  for (let y = MARGIN.top; y <= MARGIN.top + plotH; y++) {
    const loss = ((MARGIN.top + plotH - y) / plotH) * maxLoss;
    canvas.rect(MARGIN.left, y, MARGIN.left + plotW, y, rgb(bandFor(loss).colour));
  }
  const yStep = niceStep(maxLoss, 5);
  for (let v = 0; v <= maxLoss; v += yStep) {
    canvas.line(MARGIN.left, py(v), MARGIN.left + plotW, py(v), GRID);
    const label = yStep < 1 ? v.toFixed(1) : String(Math.round(v));
    canvas.text(MARGIN.left - 6 - textWidth(label), py(v) - 5, label, AXIS);
  }
  const xStep = niceStep(lastStep - firstStep, 8);
  for (let s = Math.ceil(firstStep / xStep) * xStep; s <= lastStep; s += xStep) {
    canvas.rect(px(s), MARGIN.top + plotH, px(s), MARGIN.top + plotH + 4, AXIS);
    const x = Math.min(WIDTH - 2 - textWidth(String(s)), px(s) - textWidth(String(s)) / 2);
    canvas.text(x, MARGIN.top + plotH + 8, String(s), AXIS);
  }
  canvas.rect(MARGIN.left, MARGIN.top, MARGIN.left, MARGIN.top + plotH, AXIS);
  canvas.rect(MARGIN.left, MARGIN.top + plotH, MARGIN.left + plotW, MARGIN.top + plotH, AXIS);
  curves.forEach((pts, n) => {
    const colour = LINES[n % LINES.length]!;
    for (let i = 1; i < pts.length; i++)
      canvas.line(px(pts[i - 1]!.step), py(pts[i - 1]!.loss), px(pts[i]!.step), py(pts[i]!.loss), colour);
    if (pts.length === 1)
      canvas.rect(px(pts[0]!.step) - 2, py(pts[0]!.loss) - 2, px(pts[0]!.step) + 2, py(pts[0]!.loss) + 2, colour);
  });
  return encodePng(canvas.pixels, WIDTH, HEIGHT);
}

export function encodePng(rgb: Buffer, width: number, height: number): Buffer {
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) rgb.copy(rows, y * (width * 3 + 1) + 1, y * width * 3, (y + 1) * width * 3);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits, truecolour, deflate, no filter method, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
