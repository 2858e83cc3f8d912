import { describe, expect, it } from 'vitest';
import { bandFor, finalLoss } from '../../src/tables.ts';

describe('quality bands', () => {
  it.each([
    [0.2999, '⚠️', 'Overfitted'],
    [0.3, '🟡', 'Borderline'],
    [0.3999, '🟡', 'Borderline'],
    [0.4, '🎯', 'Optimal'],
    [0.6999, '🎯', 'Optimal'],
    [0.7, '✅', 'Good'],
    [1.0, '✅', 'Good'],
    [1.0001, '🔴', 'Underfitted'],
    [NaN, '💥', 'Diverged'],
    [Infinity, '💥', 'Diverged'],
  ])('a final loss of %s is %s %s', (loss, emoji, label) => {
    expect(bandFor(loss)).toMatchObject({ emoji, label });
  });

  it('gives every loss in the range the seed left unnamed (0.3 to 0.4) a band', () => {
    for (let loss = 0.3; loss < 0.4; loss += 0.001) expect(bandFor(loss).id).toBe('borderline');
  });

  it('takes the final loss as the mean of the last ten step losses, not the run average', () => {
    const losses = [...Array(20).fill(9), ...Array(5).fill(1), ...Array(5).fill(0.5)];
    expect(finalLoss(losses)).toBeCloseTo(0.75);
    expect(finalLoss([2, 4])).toBeCloseTo(3);
    expect(finalLoss([])).toBeNaN();
  });
});
