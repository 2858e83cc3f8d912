/**
 * The embedded default's Redis keeps its data: in a folder given to startEmbeddedRedis (the bot's is
 * EMBEDDED_REDIS_DIR, .cache/redis), with an append-only file, one process per folder. Without a folder (tests,
 * benchmarks) it keeps nothing. The bot processes here run as `npm start` does, the console fed from a pipe, with no
 * runner (EMBEDDED_RUNNER=false: the queue side is what a restart must keep).
 */
import { execa, type ResultPromise } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/shared/config.ts';
import { EmbeddedRedisError, startEmbeddedRedis } from '../../src/shared/redis.ts';
import { alive } from '../helpers/processes.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A temp folder, removed after the test, with any redis-server still running on it stopped first. */
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(async () => {
    const pid = Number(await readFile(join(dir, 'redis', 'redis.pid'), 'utf8').catch(() => '0'));
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Whether a process runs: alive and not a zombie waiting for init to reap it. */
function running(pid: number): boolean {
  if (!alive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** The pid of a process that has ended. */
async function deadPid(): Promise<number> {
  const child = execa('true');
  await child;
  return child.pid!;
}

async function withClient<T>(url: string, f: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  try {
    return await f(r);
  } finally {
    r.disconnect();
  }
}

describe('startEmbeddedRedis', () => {
  it('without a folder keeps nothing: a temp folder, removed at stop', async () => {
    const redis = await startEmbeddedRedis();
    await withClient(redis.url, (r) => r.set('k', 'v'));
    expect(existsSync(redis.dir)).toBe(true);
    await redis.stop();
    expect(existsSync(redis.dir)).toBe(false);
  });

  it('with a folder keeps its data from one start to the next, and leaves no owner or pid file at stop', async () => {
    const dir = join(await tempDir('chatops-er-'), 'redis');
    const first = await startEmbeddedRedis({ dir });
    await withClient(first.url, async (r) => {
      await r.incr('counter');
      await r.incr('counter');
    });
    await first.stop();
    expect((await readdir(dir)).sort()).toEqual(['appendonlydir', 'redis.log']);
    const second = await startEmbeddedRedis({ dir });
    cleanups.push(() => second.stop());
    expect(await withClient(second.url, (r) => r.incr('counter'))).toBe(3);
  });

  it('refuses a folder another live process owns, and takes over one whose owner is gone', async () => {
    const dir = join(await tempDir('chatops-er-'), 'redis');
    const held = await startEmbeddedRedis({ dir });
    await expect(startEmbeddedRedis({ dir })).rejects.toThrow(EmbeddedRedisError);
    await held.stop();

    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'owner.json'), JSON.stringify({ pid: process.ppid }));
    await expect(startEmbeddedRedis({ dir })).rejects.toThrow(
      `another bot of this folder runs (pid ${process.ppid}); stop it, or set REDIS_URL`,
    );

    for (const owner of [
      { pid: await deadPid() },
      { pid: 1, started: '-1' /* pid 1, but not the process that wrote it */ },
      '',
      'garbage',
    ]) {
      await writeFile(join(dir, 'owner.json'), typeof owner === 'string' ? owner : JSON.stringify(owner));
      const redis = await startEmbeddedRedis({ dir });
      await redis.stop();
    }
  });

  it('starts on an append-only file cut short (a power loss), and names the folder to delete when the file is bad', async () => {
    const dir = join(await tempDir('chatops-er-'), 'redis');
    const first = await startEmbeddedRedis({ dir });
    await withClient(first.url, async (r) => {
      await r.set('kept', 'yes');
      await r.set('cut', 'x'.repeat(100));
    });
    await first.stop();
    const aofDir = join(dir, 'appendonlydir');
    const incr = join(aofDir, (await readdir(aofDir)).find((f) => f.endsWith('.incr.aof'))!);
    await truncate(incr, (await stat(incr)).size - 20);
    const second = await startEmbeddedRedis({ dir });
    expect(await withClient(second.url, (r) => r.mget('kept', 'cut'))).toEqual(['yes', null]);
    await second.stop();

    await writeFile(incr, `${await readFile(incr, 'utf8')}garbage\r\n`);
    const error = await startEmbeddedRedis({ dir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EmbeddedRedisError);
    expect((error as Error).message).toContain(`would not start on the data kept in ${dir}`);
    expect((error as Error).message).toMatch(/Bad file format.*: delete that folder to start afresh/);
    expect(existsSync(join(dir, 'owner.json'))).toBe(false);
    await rm(dir, { recursive: true });
    const fresh = await startEmbeddedRedis({ dir });
    await fresh.stop();
  });
});

/** The bot as `npm start` runs it, on the embedded default, its Redis's data in `redisDir`, the console on a pipe. */
function bot(redisDir: string, modelsDir: string) {
  const child = execa('node', ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO_ROOT,
    env: {
      REDIS_URL: '',
      EMBEDDED_REDIS_DIR: redisDir,
      EMBEDDED_RUNNER: 'false',
      MODELS_DIR: modelsDir,
      CONSOLE_USER: 'ada',
      LOG_LEVEL: 'warn',
    },
    extendEnv: true,
    reject: false,
    stdin: 'pipe',
    // A SIGTERM here is the test: execa's default SIGKILL 5 s later would cut short a shutdown that runs slow on a
    // loaded machine, and the test would see a killed bot instead of its exit code.
    forceKillAfterDelay: false,
  });
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await child;
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return {
    child: child as ResultPromise,
    out: () => out,
    err: () => err,
    type: (...lines: string[]) => void child.stdin!.write(lines.map((l) => `${l}\n`).join('')),
    /** Waits until the console has printed a line matching `pattern`. */
    async answer(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = out.split('\n').find((l) => pattern.test(l));
        if (line) return line;
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`no line matched ${pattern}\nstdout:\n${out}\nstderr:\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

async function botFolders() {
  const base = await tempDir('chatops-er-bot-');
  await mkdir(join(base, 'models'));
  return { redisDir: join(base, 'redis'), modelsDir: join(base, 'models') };
}

describe('the bot process on its embedded default, started again on the same folder', () => {
  it('keeps job ids and job history across a clean restart', async () => {
    const { redisDir, modelsDir } = await botFolders();
    const first = bot(redisDir, modelsDir);
    first.type('/train quick_test');
    await first.answer(/^🧪 Training job 1: quick_test/);
    first.child.kill('SIGTERM'); // cancels what it queued, stops its Redis (which writes out its file), exits
    expect((await first.child).exitCode).toBe(130);
    expect((await readdir(redisDir)).sort()).toEqual(['appendonlydir', 'redis.log']); // no owner, no live server

    const second = bot(redisDir, modelsDir);
    second.type('/train status 1', '/train quick_test', '/queue');
    await second.answer(/^\S+ job 1\b.*\bcancelled by ada\b/); // its history: what became of it
    await second.answer(/^🧪 Training job 2: quick_test · .* for ada$/);
    await second.answer(/^🕒 job 2 waiting: quick_test for ada$/);
    expect(second.out()).toMatch(/^Queue: 0 running, 1 waiting$/m);
    second.child.kill('SIGTERM');
    expect((await second.child).exitCode).toBe(130);
  });

  it('refuses a second bot on the folder while the first runs, in one line, and the first goes on', async () => {
    const { redisDir, modelsDir } = await botFolders();
    const first = bot(redisDir, modelsDir);
    first.type('/queue');
    await first.answer(/^The queue is empty/);
    const second = bot(redisDir, modelsDir);
    const refused = await second.child;
    expect(refused.exitCode).toBe(1);
    expect(second.err()).toBe(`another bot of this folder runs (pid ${first.child.pid}); stop it, or set REDIS_URL\n`);
    expect(second.out()).toBe('');

    first.type('/train quick_test');
    await first.answer(/^🧪 Training job 1: quick_test/);
    first.child.kill('SIGTERM');
    expect((await first.child).exitCode).toBe(130);
  });

  it('of two bots started at once on a folder a dead bot owned, runs one and refuses the other', async () => {
    const { redisDir, modelsDir } = await botFolders();
    await mkdir(redisDir);
    await writeFile(join(redisDir, 'owner.json'), JSON.stringify({ pid: await deadPid() }));
    const bots = [bot(redisDir, modelsDir), bot(redisDir, modelsDir)];
    const refused = await Promise.race(bots.map(async (b) => (await b.child, b)));
    const other = bots.find((b) => b !== refused)!;
    expect(refused.child.exitCode).toBe(1);
    expect(refused.err()).toBe(`another bot of this folder runs (pid ${other.child.pid}); stop it, or set REDIS_URL\n`);
    other.type('/queue');
    await other.answer(/^The queue is empty/);
    other.child.stdin!.end();
    expect((await other.child).exitCode).toBe(0);
  });

  it('after a bot killed with SIGKILL, stops the redis-server it left behind and goes on with its data', async () => {
    const { redisDir, modelsDir } = await botFolders();
    const first = bot(redisDir, modelsDir);
    first.type('/train quick_test');
    await first.answer(/^🧪 Training job 1: quick_test/);
    const orphan = Number(await readFile(join(redisDir, 'redis.pid'), 'utf8'));
    first.child.kill('SIGKILL');
    await first.child;
    await new Promise((r) => setTimeout(r, 200));
    expect(running(orphan)).toBe(true); // its own process group: a SIGKILL of the bot leaves it running

    const second = bot(redisDir, modelsDir);
    second.type('/train status 1', '/queue', '/train quick_test');
    await second.answer(/^🕒 job 1 waiting: quick_test for ada$/);
    expect(second.out()).toMatch(/^Queue: 0 running, 1 waiting\n🕒 job 1 waiting: quick_test for ada$/m);
    await second.answer(/^🧪 Training job 2: quick_test · .* for ada$/);
    expect(running(orphan)).toBe(false);
    expect(second.err()).toBe('');
    second.child.kill('SIGTERM');
    expect((await second.child).exitCode).toBe(130);
  });
});
