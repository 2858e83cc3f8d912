/**
 * The bot as `npm start` runs it: its own process, its own redis-server (REDIS_URL unset), the embedded runner and
 * the console on a pipe. End of input waits for the jobs; Ctrl-C cancels them; both shut everything down.
 */
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/shared/config.ts';
import { pingRedis } from '../../src/shared/redis.ts';
import { commandLines } from '../helpers/processes.ts';

/** The bot as npm start runs it, on folders of its own (or those of an earlier one, `dirs`, as a restart finds them). */
async function botProcess(env: Record<string, string> = {}, dirs?: { modelsDir: string; redisDir: string }) {
  const modelsDir = dirs?.modelsDir ?? (await mkdtemp(join(tmpdir(), 'chatops-main-')));
  // its Redis keeps its data in a folder of this test's own, not in the clone's .cache/redis
  const redisDir = dirs?.redisDir ?? (await mkdtemp(join(tmpdir(), 'chatops-main-redis-')));
  const child = execa('node', ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO_ROOT,
    env: {
      MODELS_DIR: modelsDir,
      EMBEDDED_REDIS_DIR: redisDir,
      LOG_LEVEL: 'debug',
      PROGRESS_EDIT_INTERVAL_MS: '100',
      REDIS_URL: '',
      CONSOLE_USER: 'grace',
      ...env,
    },
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
  return { child, modelsDir, redisDir, out: () => out, err: () => err, waitFor };
}

/**
 * A transcript with what differs from one run or machine to the next made alike: the machine's name, numbers (times,
 * dates, losses' digits, memory), the progress bar, and CPU model; a run of status updates (as many as the machine's
 * speed makes) as one line. What stays: every line's words and emoji, in their order.
 */
function normalized(text: string, host: string): string[] {
  const lines = text
    .trimEnd()
    .split('\n')
    .map((line) =>
      line
        .replace(`starting on ${host}…`, 'starting on HOST…')
        .replace(new RegExp(`^🟢 ${host.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} · `), '🟢 HOST · ')
        // the card of a job that the idle runner takes at once, or a moment after the card was made
        .replace(/^(⏳ starting now|🕒 next up) · /, 'NEXT · ')
        .replace(/CPU backend, \d+ × .+? · RAM/, 'CPU backend, N × CPU · RAM')
        .replace(/\[[█░]+\]/g, '[BAR]')
        .replace(/\d+/g, 'N')
        .replace(/^(⏳ job N \[BAR\] N\/N · ).*$/, '$1…'),
    );
  return lines.filter((line, i) => !(line.endsWith(' · …') && line === lines[i - 1]));
}

describe('the bot process on its embedded default', () => {
  it("prints the README's quick-start sample when given its script", async () => {
    const readme = readFileSync(`${REPO_ROOT}/README.md`, 'utf8');
    const script = /^printf '(.+)' \| npm start --silent$/m.exec(readme)?.[1];
    expect(script, 'the README shows the quick start as a script').toBeDefined();
    // the script's block, then a line of prose, then the sample's block
    const sample = readme.slice(readme.indexOf(script!)).split('```')[2]?.replace(/^\n/, '');
    expect(sample, 'the sample follows the script').toBeTruthy();
    const bot = await botProcess({ LOG_LEVEL: 'info', PROGRESS_EDIT_INTERVAL_MS: '', CONSOLE_USER: 'you' }); // as npm start has them where $USER is unset
    bot.child.stdin!.end(script!.replaceAll('\\n', '\n'));
    const result = await bot.child;
    expect(result.exitCode).toBe(0);
    // the sample was made on a machine called vm
    expect(normalized(bot.out(), hostname())).toEqual(normalized(sample!, 'vm'));
  });

  it('reads a piped script, waits at the end of input for its job, then stops its Redis and exits 0', async () => {
    const bot = await botProcess();
    const [, url] = await bot.waitFor(/embedded redis-server on (redis:\/\/127\.0\.0\.1:\d+)/, bot.err, 60_000);
    bot.child.stdin!.end('/train quick_test\n/queue\n');
    const result = await bot.child;
    expect(result.exitCode).toBe(0);
    expect(bot.out()).toMatch(/^✅ job 1 done · final loss .* \(now latest\)$/m);
    expect(await pingRedis(url!)).toBe(false);
  });

  it("killed mid-job and started again: the new console shows the job's progress and its end, then forgets it", async () => {
    const env = { JOB_LOCK_MS: '3000' }; // the killed bot's runner held the job: its lock lapses in 3 s
    const first = await botProcess(env);
    first.child.stdin!.write('/train quick_test\n');
    await first.waitFor(/⏳ job 1 \[.*\] [1-9]\d*\/30/, first.out);
    first.child.kill('SIGKILL'); // the bot and its embedded runner; its Redis and the trainer are left to notice
    await first.child;
    expect(first.out()).not.toMatch(/job 1 done/);

    const second = await botProcess(env, first);
    second.child.stdin!.end(''); // nothing new to run: it waits for the job it found
    const result = await second.child;
    expect(result.exitCode).toBe(0);
    const out = second.out();
    // the job's message printed anew (its card and status), its progress, then its end: as new lines
    expect(out).toMatch(/^🧪 Training job 1: quick_test · 30 steps · 100 examples · for grace$/m);
    expect(out).toMatch(/^⏳ job 1 \[.*\] \d+\/30 /m);
    expect(out).toMatch(/^✅ job 1 done · final loss .* \(now latest\)$/m);

    // and a third start has nothing left to show or wait for
    const third = await botProcess(env, first);
    third.child.stdin!.end('/queue\n');
    expect((await third.child).exitCode).toBe(0);
    expect(third.out().trim().split('\n')).toEqual(['/queue', 'The queue is empty. /train quick_test starts a run.']);
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
