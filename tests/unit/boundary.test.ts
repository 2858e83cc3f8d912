/** The core and the commands are platform-neutral: only adapters under src/chat/ may import a platform SDK. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/config.ts';

function files(dir: string): string[] {
  return readdirSync(join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('the adapter boundary', () => {
  it('no file of commands/ or of the core imports discord.js or @slack/bolt', () => {
    const core = [...files('commands'), ...files('src').filter((f) => !f.startsWith('src/chat/'))];
    expect(core.length).toBeGreaterThan(10);
    const offenders = core.filter((f) => /from ['"](discord\.js|@slack\/bolt|@slack\/web-api)['"]/.test(readFileSync(join(REPO_ROOT, f), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('only src/config.ts reads process.env', () => {
    const readers = [...files('src'), ...files('commands'), ...files('gpu-runner')].filter((f) =>
      /process\.env\b/.test(readFileSync(join(REPO_ROOT, f), 'utf8')),
    );
    expect(readers).toEqual(['src/config.ts']);
  });
});
