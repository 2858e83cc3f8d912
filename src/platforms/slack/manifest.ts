/**
 * The Slack app manifest, made from the command registry: every slash command with its description and usage, and
 * the scopes and events that the commands' capabilities need. `npm run slack-manifest` writes docs/slack-manifest.yml
 * from it; a test fails when the file and the commands disagree.
 */
import type { Capability, CommandSpec } from '../../bot/command-kit.ts';
import { usage } from '../../bot/command-kit.ts';

/** Every command needs these: slash commands, posting and editing, and reading user groups for group: rules. */
const BASE_SCOPES = ['commands', 'chat:write', 'usergroups:read'];
/** What each capability needs of Slack. */
const NEEDS: Record<Capability, { scopes: string[]; events: string[] }> = {
  files: { scopes: ['files:write'], events: [] },
  // a /chat thread: its replies arrive as message events of the channel
  threads: { scopes: ['channels:history'], events: ['message.channels'] },
};
/** Slack's limit on a usage hint. */
const USAGE_HINT_CHARS = 1000;

/** `quick_test | standard [r] … | status [job] | cancel <job>`: what may follow the command, as /help shows it. */
function usageHint(c: CommandSpec): string {
  const strip = (line: string) => line.replace(/^\/\S+\s?/, '');
  if (!c.subcommands) return strip(usage(c));
  const parts: string[] = [];
  const groups = new Set<string>();
  for (const s of c.subcommands) {
    if (!s.group) parts.push(strip(usage(c, s)));
    else if (!groups.has(s.group)) {
      groups.add(s.group);
      parts.push(`<${s.group}> ${strip(usage(c, s)).split(' ').slice(1).join(' ')}`.trim());
    }
  }
  return parts.join(' | ').slice(0, USAGE_HINT_CHARS);
}

/** A JSON string is a valid YAML double-quoted scalar. */
const q = (s: string) => JSON.stringify(s);

export function slackManifest(commands: readonly CommandSpec[]): string {
  const used = new Set(commands.flatMap((c) => c.uses ?? []));
  const scopes = [...new Set([...BASE_SCOPES, ...[...used].flatMap((u) => NEEDS[u].scopes)])];
  const events = [...new Set([...used].flatMap((u) => NEEDS[u].events))];
  const lines = [
    '# The Slack app manifest of the bot, made from its commands by `npm run slack-manifest` (do not edit by hand).',
    '# Slack: "Create an app" → "From an app manifest". Socket Mode is on; for HTTP mode turn it off and set each slash',
    "# command's url to https://<your host>/slack/events.",
    'display_information:',
    '  name: gpt-oss trainer',
    '  description: Fine-tune and manage gpt-oss LoRA adapters from the channel',
    'features:',
    '  bot_user:',
    '    display_name: trainbot',
    '    always_online: true',
    '  slash_commands:',
  ];
  for (const c of [...commands].sort((a, b) => a.name.localeCompare(b.name))) {
    lines.push(`    - command: /${c.name}`, `      description: ${q(c.description)}`);
    const hint = usageHint(c);
    if (hint) lines.push(`      usage_hint: ${q(hint)}`);
    lines.push('      should_escape: false');
  }
  lines.push('oauth_config:', '  scopes:', '    bot:', ...scopes.map((s) => `      - ${s}`), 'settings:');
  if (events.length) lines.push('  event_subscriptions:', '    bot_events:', ...events.map((e) => `      - ${e}`));
  lines.push('  socket_mode_enabled: true', '  org_deploy_enabled: false', '  token_rotation_enabled: false');
  return `${lines.join('\n')}\n`;
}
