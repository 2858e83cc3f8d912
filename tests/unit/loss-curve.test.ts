/** The loss curve PNG, decoded back to pixels: a real PNG, and the line is where the losses say. */
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { renderLossCurve } from '../../src/bot/loss-curve.ts';

function decode(png: Buffer) {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  let at = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  while (at < png.length) {
    const len = png.readUInt32BE(at);
    const type = png.toString('ascii', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') [width, height] = [data.readUInt32BE(0), data.readUInt32BE(4)];
    if (type === 'IDAT') idat.push(data);
    at += 12 + len;
  }
  const rows = inflateSync(Buffer.concat(idat));
  const pixel = (x: number, y: number) => [
    ...rows.subarray(y * (width * 3 + 1) + 1 + x * 3, y * (width * 3 + 1) + 4 + x * 3),
  ];
  return { width, height, pixel };
}

const isLine = ([r, g, b]: number[]) => r! < 80 && g! < 120 && b! > 150;

function lineRows(img: ReturnType<typeof decode>, x: number): number[] {
  const ys: number[] = [];
  for (let y = 0; y < img.height; y++) if (isLine(img.pixel(x, y))) ys.push(y);
  return ys;
}

describe('the loss curve', () => {
  it('is a PNG whose line starts high and ends low when the loss falls', () => {
    const losses = Array.from({ length: 30 }, (_, i) => 5 - (4.5 * i) / 29);
    const png = renderLossCurve(losses);
    expect(png.length).toBeLessThan(64 * 1024);
    const img = decode(png);
    expect([img.width, img.height]).toEqual([640, 320]);
    const start = lineRows(img, 46);
    const end = lineRows(img, 626);
    expect(start.length).toBeGreaterThan(0);
    expect(end.length).toBeGreaterThan(0);
    expect(Math.min(...start)).toBeLessThan(Math.min(...end) - 150); // higher on the image = larger loss
  });

  it('colours the background by band: the optimal band’s green lies under a loss of 0.55', () => {
    const img = decode(renderLossCurve([2, 1.5, 1]));
    // maxLoss = max(1.2, 2) * 1.05 = 2.1; plot height 280 from y=12 (0.55 is between two grid lines)
    const y = Math.round(12 + 280 - (0.55 / 2.1) * 280);
    expect(img.pixel(300, y)).toEqual([214, 240, 214]);
  });

  it('draws nothing wrong for a run with non-finite losses or a single step', () => {
    expect(() => renderLossCurve([null, 3, null])).not.toThrow();
    expect(() => renderLossCurve([])).not.toThrow();
  });
});
