/**
 * Who may do what, from settings. A rule is a comma-separated list of principals: `*` (everyone), `user:<id>`,
 * `role:<id>` (a Discord role), `group:<id>` (a Slack user group) or `channel:<id>`. An empty rule allows nobody.
 */
export type Permission = 'train' | 'cancel_any' | 'ask' | 'manage_models';

export const PERMISSION_SETTINGS: Record<Permission, string> = {
  train: 'ALLOW_TRAIN',
  cancel_any: 'ALLOW_CANCEL_ANY',
  ask: 'ALLOW_ASK',
  manage_models: 'ALLOW_MANAGE_MODELS',
};

export interface Caller {
  id: string;
  name: string;
  platform: string;
  /** Discord role ids, or the Slack user groups (of those the rules name) the user belongs to. */
  roles: readonly string[];
}

export type Rule = readonly string[];

export function parseRule(text: string): Rule {
  return text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}

export function ruleProblems(rule: Rule): string[] {
  return rule
    .filter((p) => p !== '*' && !/^(user|role|group|channel):[A-Za-z0-9_.-]+$/.test(p))
    .map((p) => `'${p}' is not *, user:ID, role:ID, group:ID or channel:ID`);
}

export class AccessPolicy {
  constructor(private readonly rules: Readonly<Record<Permission, Rule>>) {}

  allows(permission: Permission, caller: Caller, channelId: string): boolean {
    return this.rules[permission].some(
      (p) =>
        p === '*' ||
        p === `user:${caller.id}` ||
        p === `channel:${channelId}` ||
        ((p.startsWith('role:') || p.startsWith('group:')) && caller.roles.includes(p.slice(p.indexOf(':') + 1))),
    );
  }

  /** The Slack user groups the rules name: the Slack adapter looks up only these. */
  groups(): string[] {
    return [
      ...new Set(
        Object.values(this.rules)
          .flat()
          .filter((p) => p.startsWith('group:'))
          .map((p) => p.slice(6)),
      ),
    ];
  }
}
