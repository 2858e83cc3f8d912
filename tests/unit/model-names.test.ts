/** The bot reads the folder names that the trainer makes (gpu-runner/trainer/models_dir.py, tested by pytest). */
import { describe, expect, it } from 'vitest';
import { parseModelName } from '../../src/shared/model-names.ts';

describe('model folder names', () => {
  it('parses the seed’s examples, profiles with underscores included', () => {
    expect(parseModelName('gpt-oss-20b_max_quality_20251005_0930')).toEqual({
      base: 'gpt-oss-20b',
      profile: 'max_quality',
      createdAt: new Date(2025, 9, 5, 9, 30),
      sequence: 1,
    });
    expect(parseModelName('gpt-oss-20b_standard_20251004_2115')?.profile).toBe('standard');
    expect(parseModelName('gpt-oss-20b_conservative_20251004_1430')?.createdAt).toEqual(new Date(2025, 9, 4, 14, 30));
  });

  it('reads the -N of a second run in the same minute, and the tiny model’s base', () => {
    expect(parseModelName('gpt-oss-20b_conservative_20251004_1430-3')?.sequence).toBe(3);
    expect(parseModelName('tiny-gpt-oss_quick_test_20261125_1200')).toMatchObject({
      base: 'tiny-gpt-oss',
      profile: 'quick_test',
    });
  });

  it.each([
    'latest',
    'archive',
    'gpt-oss-20b_huge_20251004_2115',
    'gpt-oss-20b_standard_20251304_2115',
    'gpt-oss-20b_standard_20251004_2515',
    'gpt-oss-20b_standard_2025100_2115',
    'gpt-oss-20b_standard_20250231_1200',
  ])('is not a model folder: %s', (name) => expect(parseModelName(name)).toBeNull());
});
