/** Slack works as documented: the app manifest in docs/ declares every command the bot has, with the scopes they need. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS_DIR } from '../../src/bot/bot.ts';
import { slackManifest } from '../../src/platforms/slack/manifest.ts';
import { CommandRegistry } from '../../src/bot/command-registry.ts';
import { REPO_ROOT } from '../../src/shared/config.ts';

describe('docs/slack-manifest.yml', async () => {
  const registry = await CommandRegistry.load(COMMANDS_DIR);
  const file = readFileSync(join(REPO_ROOT, 'docs/slack-manifest.yml'), 'utf8');

  it('is what the command registry makes (npm run slack-manifest writes it)', () => {
    expect(file).toBe(slackManifest([...registry.commands.values()]));
  });

  it('declares every slash command the bot answers, and no other', () => {
    const declared = [...file.matchAll(/^ {4}- command: \/(\S+)$/gm)].map((m) => m[1]).sort();
    expect(declared).toEqual([...registry.commands.keys()].sort());
    expect(declared).toEqual(expect.arrayContaining(['ask', 'chat', 'runners', 'train', 'models', 'queue', 'help']));
  });

  it('asks for the scopes and events the commands use: files for the loss curves, history for /chat threads', () => {
    for (const scope of ['commands', 'chat:write', 'files:write', 'channels:history', 'usergroups:read'])
      expect(file).toMatch(new RegExp(`^ {6}- ${scope}$`, 'm'));
    expect(file).toMatch(/bot_events:\n {6}- message\.channels\n/);
  });
});
