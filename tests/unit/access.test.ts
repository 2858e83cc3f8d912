import { describe, expect, it } from 'vitest';
import { AccessPolicy, parseRule, ruleProblems } from '../../src/shared/access.ts';
import { ConfigError, loadConfig } from '../../src/shared/config.ts';

const caller = (id: string, roles: string[] = []) => ({ id, name: id, platform: 'discord', roles });

describe('access rules', () => {
  const policy = new AccessPolicy({
    train: parseRule('user:U1, role:R9,group:S7'),
    cancel_any: parseRule('channel:ops'),
    ask: parseRule('*'),
    manage_models: parseRule(''),
  });

  it('allows a listed user, a member of a listed role or group, and anyone in a listed channel', () => {
    expect(policy.allows('train', caller('U1'), 'c')).toBe(true);
    expect(policy.allows('train', caller('U2', ['R9']), 'c')).toBe(true);
    expect(policy.allows('train', caller('U3', ['S7']), 'c')).toBe(true);
    expect(policy.allows('train', caller('U4', ['R1']), 'c')).toBe(false);
    expect(policy.allows('cancel_any', caller('U4'), 'ops')).toBe(true);
    expect(policy.allows('cancel_any', caller('U1'), 'c')).toBe(false);
  });

  it('lets everyone train and nobody cancel others’ jobs by default', () => {
    const c = loadConfig({});
    const d = new AccessPolicy(c.access);
    expect(d.allows('train', caller('anyone'), 'c')).toBe(true);
    expect(d.allows('cancel_any', caller('anyone'), 'c')).toBe(false);
  });

  it('names a malformed rule at start-up', () => {
    expect(ruleProblems(parseRule('user:U1,admins,role:'))).toEqual([
      "'admins' is not *, user:ID, role:ID, group:ID or channel:ID",
      "'role:' is not *, user:ID, role:ID, group:ID or channel:ID",
    ]);
    expect(() => loadConfig({ ALLOW_TRAIN: 'admins' })).toThrow(ConfigError);
  });

  it('tells the Slack adapter which user groups to look up', () => {
    expect(policy.groups()).toEqual(['S7']);
  });
});
