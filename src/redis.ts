/**
 * Redis for the queue: a connection to REDIS_URL, or, on the embedded default, a redis-server of our own on a free
 * loopback port with nothing persisted, stopped again at shutdown.
 */
import { execa, type ResultPromise } from 'execa';
import { Redis } from 'ioredis';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logger } from './log.ts';

const log = logger('redis');

/**
 * Compare-and-delete, for a lock held under a token (SET NX PX): only its holder releases it, never a process that
 * took it after the holder's lapsed.
 */
export const RELEASE_IF_HOLDER = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

/** One connection with the options BullMQ needs (no per-command retry limit for its blocking calls). */
export function connectRedis(url: string): Redis {
  return watched(new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false }));
}

/** A second connection to the same server (subscribers, blocking reads), logged the same way. */
export function duplicateRedis(redis: Redis): Redis {
  return watched(redis.duplicate());
}

/** Closes a connection politely, or at once if the server does not answer in time. */
export async function closeRedis(redis: Redis, timeoutMs = 2_000): Promise<void> {
  if (redis.status === 'end') return;
  await Promise.race([redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, timeoutMs))]);
  redis.disconnect();
}

/** Logs a connection's problems once each (not once per retry), and its recovery. */
function watched(redis: Redis): Redis {
  let lastError = '';
  redis.on('error', (e: Error) => {
    if (e.message !== lastError) log.warn(`connection problem: ${e.message}`);
    lastError = e.message;
  });
  redis.on('ready', () => {
    if (lastError) log.info('connection is back');
    lastError = '';
  });
  return redis;
}

export interface EmbeddedRedis {
  url: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startEmbeddedRedis(binary = 'redis-server'): Promise<EmbeddedRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'chatops-redis-'));
  const port = await freePort();
  let child: ResultPromise;
  try {
    // Its own process group: Ctrl-C in a terminal signals the whole foreground group, and the bot needs its Redis
    // to cancel jobs and shut down cleanly. The bot stops it itself (and execa's cleanup does, if the bot exits).
    child = execa(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
      reject: false,
      stdin: 'ignore',
      buffer: false,
      detached: true,
      cleanup: true,
    });
  } catch (e) {
    throw new Error(`could not start ${binary}: install Redis (Debian: apt-get install redis-server) or set REDIS_URL`, { cause: e });
  }
  const url = `redis://127.0.0.1:${port}`;
  const ready = await waitForPing(url, child, 10_000);
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error(`${binary} did not start on port ${port}: install Redis (apt-get install redis-server) or set REDIS_URL`);
  }
  log.debug(`embedded redis-server on ${url}`);
  return {
    url,
    pid: child.pid,
    async stop() {
      child.kill('SIGTERM');
      await child;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Whether a Redis server answers PING at `url` right now (one try, no retries). */
export async function pingRedis(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function waitForPing(url: string, child: ResultPromise, timeoutMs: number): Promise<boolean> {
  let exited = false;
  child.then(() => (exited = true), () => (exited = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !exited) {
    if (await pingRedis(url)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
