/**
 * A loss curve as one line of text (▁▂▃▄▅▆▇█), for platforms that take no files (the console): the first and the
 * last loss, the curve resampled to at most SPARKLINE_WIDTH characters, and the step count. Steps whose loss is not
 * finite (null or NaN in loss_history.json) are left out; a stretch of them shows as a blank.
 */

const BARS = '▁▂▃▄▅▆▇█';
export const SPARKLINE_WIDTH = 40;

type Losses = readonly (number | null)[];

const finite = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** `values` in `width` buckets of consecutive values, each the mean of its finite values (null when it has none). */
export function resample(values: Losses, width: number): (number | null)[] {
  const n = values.length;
  if (n === 0) return [];
  const w = Math.max(1, Math.min(n, Math.round(width))); // w <= n: every bucket holds at least one value
  return Array.from({ length: w }, (_, i) => {
    const bucket = values.slice(Math.floor((i * n) / w), Math.floor(((i + 1) * n) / w)).filter(finite);
    return bucket.length ? bucket.reduce((a, b) => a + b, 0) / bucket.length : null;
  });
}

/** The bars of `values` (already at their width), scaled from `min` (▁) to `max` (█); a blank where a value is missing. */
export function bars(values: Losses, min: number, max: number): string {
  return values
    .map((v) => {
      if (!finite(v)) return ' ';
      const level = max > min ? Math.round(((v - min) / (max - min)) * (BARS.length - 1)) : 3;
      return BARS[Math.min(BARS.length - 1, Math.max(0, level))]!;
    })
    .join('');
}

/** 6.8123 → "6.81", 0.5 → "0.500", 2 → "2.00": three significant digits (a diverged 1234.5 → "1235"). */
const short = (v: number) => (Math.abs(v) < 1000 ? v.toPrecision(3) : v.toFixed(0));

/** `loss 6.81 ▇▆▅▄▃▂▂▁ 3.35 (30 steps)`; null for a run with no loss history. */
export function lossSparkline(losses: Losses, width = SPARKLINE_WIDTH): string | null {
  return lossSparklines([losses], width)[0]!;
}

/**
 * One sparkline per run, on one scale (/models compare): the same loss range, and the same number of steps per
 * character, so the longest run takes `width` characters and a shorter one fewer.
 */
export function lossSparklines(series: readonly Losses[], width = SPARKLINE_WIDTH): (string | null)[] {
  const all = series.flatMap((s) => s.filter(finite));
  const [min, max] = [Math.min(...all), Math.max(...all)];
  const longest = Math.max(0, ...series.map((s) => s.length));
  const stepsPerChar = Math.max(1, longest / width);
  return series.map((losses) => {
    if (losses.length === 0) return null;
    const steps = `${losses.length} step${losses.length === 1 ? '' : 's'}`;
    const good = losses.filter(finite);
    const bad = losses.length - good.length;
    if (good.length === 0) return `loss: not finite at any of its ${steps}`;
    const line = bars(resample(losses, Math.max(1, Math.round(losses.length / stepsPerChar))), min, max);
    return `loss ${short(good[0]!)} ${line} ${short(good.at(-1)!)} (${steps}${bad ? `, ${bad} not finite` : ''})`;
  });
}
