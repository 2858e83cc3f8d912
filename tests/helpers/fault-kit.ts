/**
 * What the fault-injection suite needs beyond the harness: a redis-server of the test's own that can be killed and
 * started again on the same port with its data (an append-only file), GPU runner hosts as real processes
 * (`gpu-runner/main.ts`, killed with -9 like a host that dies), and the trainer processes of a models folder.
 */
import { execa, type ResultPromise } from 'execa';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../src/shared/config.ts';
import { freePort, pingRedis } from '../../src/shared/redis.ts';
import { commandLines } from './processes.ts';
import type { Harness } from './harness.ts';
import { until } from './until.ts';

export const PYTHON = join(REPO_ROOT, '.venv/bin/python');

function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  return until(what, check, timeoutMs, 50).then(() => undefined);
}

/** A redis-server that writes every command to its append-only file before answering, as a production one should. */
export class RedisServer {
  private child: ResultPromise | null = null;
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), await mkdtemp(join(tmpdir(), 'chatops-fault-redis-')));
    await server.up();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
    ];
    this.child = execa('redis-server', args, { reject: false, stdin: 'ignore', buffer: false, cleanup: true });
    await waitUntil(() => pingRedis(this.url), 10_000, `redis-server on ${this.port}`);
  }

  /** Kills the server with SIGKILL (a crash: nothing is flushed that was not already). */
  async crash(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.child;
    this.child = null;
  }

  async stop(): Promise<void> {
    this.child?.kill('SIGTERM');
    await this.child;
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A GPU runner host as its own process, as `npm run runner` starts it (CPU backend). */
export function runnerProcess(env: Record<string, string>) {
  const child = execa('node', ['--import', 'tsx', 'gpu-runner/main.ts'], {
    cwd: REPO_ROOT,
    env: { PYTHON, LOG_LEVEL: 'info', ...env },
    extendEnv: true,
    reject: false,
    stdin: 'ignore',
  });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  return {
    child,
    log: () => log,
    ready: () =>
      waitUntil(() => /is taking training jobs/.test(log), 30_000, 'the runner to start').catch((e: Error) => {
        throw new Error(`${e.message}; it printed:\n${log}`);
      }),
  };
}

/** The environment of a runner process serving `h`'s queue (its Redis and prefix) and writing to `modelsDir`. */
export function runnerEnvFor(
  h: Harness,
  modelsDir: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    REDIS_URL: h.app.redisUrl,
    QUEUE_PREFIX: h.app.bot.config.queuePrefix,
    MODELS_DIR: modelsDir,
    JOB_LOCK_MS: '2000',
    ...extra,
  };
}

/** Pids of the train.py processes writing into `modelsDir`. */
export function trainerPids(modelsDir: string): number[] {
  return commandLines()
    .filter((l) => l.includes('train.py') && l.includes(`--models-dir=${modelsDir} `))
    .map((l) => Number(l.split(' ')[0]));
}

export async function waitForTrainer(modelsDir: string, timeoutMs = 60_000): Promise<number> {
  await waitUntil(() => trainerPids(modelsDir).length > 0, timeoutMs, `a trainer in ${modelsDir}`);
  return trainerPids(modelsDir)[0]!;
}

/** Whether a pid runs (a zombie waiting for its parent to reap it does not). */
export function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

export async function gone(pid: number, timeoutMs = 15_000): Promise<void> {
  await waitUntil(() => !running(pid), timeoutMs, `process ${pid} to end`);
}

export { waitUntil };
