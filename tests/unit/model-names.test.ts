import { describe, expect, it } from 'vitest';
import { formatModelName, isSafeModelName, parseModelName } from '../../src/model-names.ts';

describe('model folder names', () => {
  it('makes the seed’s names', () => {
    expect(formatModelName('gpt-oss-20b', 'standard', new Date(2025, 9, 4, 21, 15))).toBe('gpt-oss-20b_standard_20251004_2115');
    expect(formatModelName('gpt-oss-20b', 'max_quality', new Date(2025, 9, 5, 9, 30), 2)).toBe('gpt-oss-20b_max_quality_20251005_0930-2');
  });

  it('parses the seed’s examples, profiles with underscores included', () => {
    expect(parseModelName('gpt-oss-20b_max_quality_20251005_0930')).toEqual({
      base: 'gpt-oss-20b',
      profile: 'max_quality',
      createdAt: new Date(2025, 9, 5, 9, 30),
      sequence: 1,
    });
    expect(parseModelName('gpt-oss-20b_conservative_20251004_1430-3')?.sequence).toBe(3);
    expect(parseModelName('tiny-gpt-oss_quick_test_20261125_1200')?.profile).toBe('quick_test');
  });

  it('round-trips every name it makes', () => {
    const when = new Date(2026, 0, 31, 23, 59);
    for (const profile of ['quick_test', 'standard', 'full', 'max_quality', 'conservative']) {
      const name = formatModelName('gpt-oss-20b', profile, when, 1);
      expect(parseModelName(name)).toMatchObject({ base: 'gpt-oss-20b', profile, createdAt: when });
    }
  });

  it.each(['latest', 'archive', 'gpt-oss-20b_huge_20251004_2115', 'gpt-oss-20b_standard_20251304_2115', 'gpt-oss-20b_standard_20251004_2515', 'gpt-oss-20b_standard_2025100_2115'])(
    'refuses %s',
    (name) => expect(parseModelName(name)).toBeNull(),
  );

  it('accepts folder names but never paths as a model name', () => {
    expect(isSafeModelName('gpt-oss-20b_standard_20251004_2115')).toBe(true);
    for (const bad of ['../x', '/etc/passwd', 'a/b', '..', '.hidden', '', 'x\u0000y']) expect(isSafeModelName(bad)).toBe(false);
  });
});
