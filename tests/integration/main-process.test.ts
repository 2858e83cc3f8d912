/**
 * The bot as `npm start` runs it: its own process, its own redis-server (REDIS_URL unset), the embedded runner and
 * the console on a pipe. End of input waits for the jobs; Ctrl-C cancels them; both shut everything down.
 */
import { execa } from 'execa';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/config.ts';
import { pingRedis } from '../../src/redis.ts';
import { commandLines } from '../helpers/processes.ts';

async function botProcess() {
  const modelsDir = await mkdtemp(join(tmpdir(), 'chatops-main-'));
  const child = execa('node', ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO_ROOT,
    env: { MODELS_DIR: modelsDir, LOG_LEVEL: 'debug', PROGRESS_EDIT_INTERVAL_MS: '100', REDIS_URL: '', CONSOLE_USER: 'grace' },
    extendEnv: true,
    reject: false,
    stdin: 'pipe',
    // its own process group, so the test can signal the whole group as a terminal's Ctrl-C does
    detached: true,
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const waitFor = async (pattern: RegExp, stream: () => string, timeoutMs = 120_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(stream())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}\nstdout:\n${out}\nstderr:\n${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return pattern.exec(stream())!;
  };
  return { child, modelsDir, out: () => out, err: () => err, waitFor };
}

describe('the bot process on its embedded default', () => {
  it('reads a piped script, waits at the end of input for its job, then stops its Redis and exits 0', async () => {
    const bot = await botProcess();
    const [, url] = await bot.waitFor(/embedded redis-server on (redis:\/\/127\.0\.0\.1:\d+)/, bot.err, 60_000);
    bot.child.stdin!.end('/train quick_test\n/queue\n');
    const result = await bot.child;
    expect(result.exitCode).toBe(0);
    expect(bot.out()).toMatch(/^✅ job 1 done · final loss .* \(now latest\)$/m);
    expect(await pingRedis(url!)).toBe(false);
  });

  it('on Ctrl-C cancels what it queued, stops the trainer and its Redis, and exits 130', async () => {
    const bot = await botProcess();
    const [, url] = await bot.waitFor(/embedded redis-server on (redis:\/\/127\.0\.0\.1:\d+)/, bot.err, 60_000);
    bot.child.stdin!.write('/train standard\n');
    await bot.waitFor(/⏳ job 1 \[.*\] [1-9]\d*\/200/, bot.out);
    process.kill(-bot.child.pid!, 'SIGINT'); // the whole foreground group, as Ctrl-C in a terminal
    const result = await bot.child;
    expect(result.exitCode).toBe(130);
    expect(bot.out()).toMatch(/^🛑 job 1 cancelled by grace at step \d+$/m);
    expect(commandLines().filter((l) => l.includes(bot.modelsDir))).toEqual([]);
    expect(await pingRedis(url!)).toBe(false);
  });
});
