/** The loss curve as one line of text, for platforms that take no files (the console). */
import { describe, expect, it } from 'vitest';
import { bars, lossSparkline, lossSparklines, resample, SPARKLINE_WIDTH } from '../../src/bot/sparkline.ts';

const BARS = /^[▁▂▃▄▅▆▇█ ]*$/;
const barsOf = (line: string) => / (\S+) [\d.]+ \(/.exec(line)?.[1] ?? '';

describe('the loss sparkline', () => {
  it('shows the first and last loss, the curve from high (█) to low (▁) and the step count', () => {
    expect(lossSparkline([6.81, 6, 5, 4, 3.35])).toBe('loss 6.81 █▆▄▂▁ 3.35 (5 steps)');
    expect(lossSparkline([2.5])).toBe('loss 2.50 ▄ 2.50 (1 step)');
    expect(lossSparkline([1, 1, 1])).toBe('loss 1.00 ▄▄▄ 1.00 (3 steps)'); // a flat curve sits in the middle
  });

  it('resamples a long run to at most 40 characters, each the mean of its steps', () => {
    const losses = Array.from({ length: 1000 }, (_, i) => 7 - (6 * i) / 999);
    const line = lossSparkline(losses)!;
    expect(line).toMatch(/^loss 7.00 \S+ 1.00 \(1000 steps\)$/);
    expect([...barsOf(line)]).toHaveLength(SPARKLINE_WIDTH);
    expect(barsOf(line).startsWith('█')).toBe(true);
    expect(barsOf(line).endsWith('▁')).toBe(true);
    expect(resample([1, 3, 5, 7], 2)).toEqual([2, 6]);
    expect(resample([1, 2, 3], 10)).toEqual([1, 2, 3]); // never stretched
    expect([...barsOf(lossSparkline(Array.from({ length: 41 }, (_, i) => 41 - i))!)]).toHaveLength(40);
  });

  it('leaves out losses that are not finite (null or NaN), and says how many there were', () => {
    const line = lossSparkline([5, null, Number.NaN, 3, Number.POSITIVE_INFINITY, 1])!;
    expect(line).toBe('loss 5.00 █  ▅ ▁ 1.00 (6 steps, 3 not finite)');
    expect(lossSparkline([null, 4, 2, null])).toBe('loss 4.00  █▁  2.00 (4 steps, 2 not finite)');
    expect(lossSparkline([null, Number.NaN])).toBe('loss: not finite at any of its 2 steps');
    expect(lossSparkline([1234.5, 0.51234])).toBe('loss 1235 █▁ 0.512 (2 steps)');
    expect(lossSparkline([])).toBeNull();
    // a bucket of a resampled run with no finite loss is a blank; one with some averages those
    expect(resample([null, null, 2, Number.NaN], 2)).toEqual([null, 2]);
    expect(bars([null, 0, 1], 0, 1)).toBe(' ▁█');
  });

  it('draws several runs on one scale: the same loss range, the same steps per character', () => {
    const [a, b] = lossSparklines([
      [4, 3, 2, 1],
      [2, 2, 2, 2, 2, 2, 2, 2],
    ]);
    expect(a).toBe('loss 4.00 █▆▃▁ 1.00 (4 steps)');
    expect(b).toBe('loss 2.00 ▃▃▃▃▃▃▃▃ 2.00 (8 steps)'); // 2 sits a third of the way from 1 to 4
    const [long, short] = lossSparklines([Array.from({ length: 400 }, () => 3), Array.from({ length: 100 }, () => 3)]);
    expect([...barsOf(long!)]).toHaveLength(40);
    expect([...barsOf(short!)]).toHaveLength(10);
    expect(lossSparklines([[], [1, 2]])).toEqual([null, 'loss 1.00 ▁█ 2.00 (2 steps)']);
    for (const line of lossSparklines([[3, null, 1], [Number.NaN]])) expect(barsOf(line ?? '')).toMatch(BARS);
  });
});
