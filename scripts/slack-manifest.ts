/**
 * Writes docs/slack-manifest.yml from the command registry (src/platforms/slack/manifest.ts), or with --check says whether
 * the file is current. Run after adding or changing a command: npm run slack-manifest
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { COMMANDS_DIR } from '../src/bot/bot.ts';
import { slackManifest } from '../src/platforms/slack/manifest.ts';
import { CommandRegistry } from '../src/bot/command-registry.ts';
import { REPO_ROOT } from '../src/shared/config.ts';

const MANIFEST_FILE = join(REPO_ROOT, 'docs/slack-manifest.yml');

const wanted = slackManifest([...(await CommandRegistry.load(COMMANDS_DIR)).commands.values()]);
if (process.argv.includes('--check')) {
  const current = await readFile(MANIFEST_FILE, 'utf8').catch(() => '');
  if (current !== wanted) {
    console.error('docs/slack-manifest.yml is out of date: npm run slack-manifest');
    process.exit(1);
  }
} else {
  await writeFile(MANIFEST_FILE, wanted);
  console.log(`wrote ${MANIFEST_FILE}`);
}
