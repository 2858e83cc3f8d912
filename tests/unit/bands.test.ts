import { describe, expect, it } from 'vitest';
import { bandFor } from '../../src/shared/tables.ts';

// The final loss (the mean of the last ten step losses) is computed by the trainer: see test_models_dir.py.
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
});
