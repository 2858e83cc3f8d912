/**
 * Redis for the queue: a connection to REDIS_URL, or, on the embedded default, a redis-server of our own on a free
 * loopback port. The bot's own keeps its data in a folder (an append-only file), so jobs, job ids and conversations
 * outlive a restart; one process at a time owns that folder. Tests and benchmarks get a throw-away one.
 */
import { execa, type ResultPromise } from 'execa';
import { Redis } from 'ioredis';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readlink, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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

/**
 * A Redis outage, as this process logs it: one line when the first connection fails, one when they are back. Every
 * connection retries on its own (the bot holds several, BullMQ duplicates more for its blocking reads), and each retry
 * of each one fails alike: an operator wants the outage, not a stack trace per retry.
 */
const outage = { down: new Set<object>(), since: 0, errors: 0 };

/** Whether `e` says the server cannot be reached (refused, reset, closed), rather than that a command went wrong. */
export function isConnectionError(e: unknown): boolean {
  const { code, message } = (e ?? {}) as { code?: string; message?: string };
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'].includes(
      code ?? '',
    ) ||
    /Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|max retries|Socket closed unexpectedly/i.test(
      message ?? '',
    )
  );
}

/**
 * For the 'error' events of BullMQ's workers, queues and queue events (on connections BullMQ made): a lost connection
 * is counted in the outage that the bot's own connections log; anything else is logged as `otherwise` says.
 */
export function connectionErrorOr(otherwise: (e: Error) => void): (e: Error) => void {
  return (e) => (isConnectionError(e) ? void outage.errors++ : otherwise(e));
}

/** Logs the outages of the process's connections (see `outage`) and their recovery. */
function watched(redis: Redis): Redis {
  redis.on('error', (e: Error) => {
    outage.errors++;
    if (outage.down.has(redis)) return;
    if (outage.down.size === 0) {
      outage.since = Date.now();
      log.warn(`connection problem: ${e.message} (retrying; one line when it is back)`);
    }
    outage.down.add(redis);
  });
  const back = () => {
    if (!outage.down.delete(redis) || outage.down.size > 0) return;
    log.info(
      `connection is back after ${((Date.now() - outage.since) / 1000).toFixed(1)} s (${outage.errors} failed attempts)`,
    );
    outage.errors = 0;
  };
  redis.on('ready', back);
  redis.on('end', () => outage.down.delete(redis));
  return redis;
}

export interface EmbeddedRedis {
  url: string;
  pid: number | undefined;
  /** Where its data lives: the folder it was given, or a temp folder that stop() removes. */
  dir: string;
  stop(): Promise<void>;
}

export interface EmbeddedRedisOptions {
  /**
   * A folder that keeps the data from one start to the next (an append-only file), owned by one process at a time:
   * another process's live server there is refused, one left behind by a process that died is stopped first.
   * Unset: a temp folder with nothing persisted, removed at stop (tests, benchmarks).
   */
  dir?: string;
  binary?: string;
}

/** Why the embedded Redis could not start, in one line a user can act on (no stack trace needed). */
export class EmbeddedRedisError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmbeddedRedisError';
  }
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

/** The file in a kept folder naming the process that owns it: {"pid":…,"started":…} (its start time, from /proc). */
const OWNER_FILE = 'owner.json';
/** redis-server's own pid file (--pidfile), which it removes when it exits cleanly. */
const REDIS_PID_FILE = 'redis.pid';
/** redis-server's log, started afresh at each start: what a failed start printed. */
const LOG_FILE = 'redis.log';
/** How long a redis-server gets to exit after SIGTERM (it writes out the append-only file) before SIGKILL. */
const STOP_TIMEOUT_MS = 15_000;
/** Folders this process holds: a second start on one of them would put two servers on one folder. */
const held = new Set<string>();

export async function startEmbeddedRedis(options: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
  const binary = options.binary ?? 'redis-server';
  const kept = options.dir !== undefined;
  const dir = kept ? resolve(options.dir!) : await mkdtemp(join(tmpdir(), 'chatops-redis-'));
  const release = kept ? await ownFolder(dir) : async () => rm(dir, { recursive: true, force: true });
  try {
    const server = await launch(binary, dir, kept);
    log.debug(`embedded redis-server on ${server.url}, ${kept ? `its data kept in ${dir}` : 'nothing kept'}`);
    const stopAtExit = () => server.child.kill('SIGTERM'); // process.exit(): Redis still writes out its file
    process.on('exit', stopAtExit);
    return {
      url: server.url,
      pid: server.child.pid,
      dir,
      async stop() {
        process.off('exit', stopAtExit);
        await stopProcess(
          server.child.pid,
          () => server.child.kill('SIGTERM'),
          () => server.child.kill('SIGKILL'),
          server.child,
        );
        await release();
      },
    };
  } catch (e) {
    await release();
    throw e;
  }
}

/** Starts redis-server in `dir` on a free port (another one if that port was taken meanwhile) and waits for PING. */
async function launch(binary: string, dir: string, kept: boolean): Promise<{ url: string; child: ResultPromise }> {
  const persistence = kept
    ? [
        '--appendonly',
        'yes',
        '--appendfsync',
        'everysec',
        '--aof-load-truncated',
        'yes',
        '--pidfile',
        join(dir, REDIS_PID_FILE),
      ]
    : ['--appendonly', 'no'];
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    await writeFile(join(dir, LOG_FILE), '');
    // Its own process group: Ctrl-C in a terminal signals the whole foreground group, and the bot needs its Redis
    // to cancel jobs and shut down cleanly. The bot stops it itself (and at process.exit(); a bot killed with
    // SIGKILL leaves it running, and the next start on a kept folder stops it).
    const child = execa(
      binary,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        ...persistence,
        '--dir',
        dir,
        '--logfile',
        join(dir, LOG_FILE),
      ],
      { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', detached: true, cleanup: false },
    );
    const url = `redis://127.0.0.1:${port}`;
    if (await waitForPing(url, child, 60_000)) return { url, child };
    child.kill('SIGKILL');
    const result = await child;
    const said = await readFile(join(dir, LOG_FILE), 'utf8').catch(() => '');
    if (/Address already in use/.test(said) && attempt < 3) continue;
    if (result.code === 'ENOENT' || (result.failed && result.exitCode === undefined && !said)) {
      throw new EmbeddedRedisError(
        `could not run ${binary}: install Redis (Debian: apt-get install redis-server) or set REDIS_URL`,
      );
    }
    const why =
      lastProblem(said) ??
      String(result.stderr ?? '')
        .trim()
        .split('\n')
        .pop() ??
      '';
    throw new EmbeddedRedisError(
      kept
        ? `${binary} would not start on the data kept in ${dir}${why ? ` (it said: ${why})` : ''}: delete that folder to start afresh (its jobs, job history and /chat conversations are lost), or set REDIS_URL`
        : `${binary} did not start${why ? ` (it said: ${why})` : ''}: install Redis (Debian: apt-get install redis-server) or set REDIS_URL`,
    );
  }
}

/** The last warning in a redis-server log ("#" lines), but the memory-overcommit advice it prints on many hosts. */
function lastProblem(logText: string): string | undefined {
  const lines = logText.split('\n').filter((l) => / # /.test(l) && !/overcommit/i.test(l));
  return lines.pop()?.replace(/^.*? # /, '');
}

/**
 * Takes a kept folder for this process, or says who has it. The owner file is created exclusively; one naming a
 * process that is gone is moved aside (only that file: a newer owner's is put back), and a redis-server that such a
 * process left running there is stopped. Returns the release, which removes the owner file.
 */
async function ownFolder(dir: string): Promise<() => Promise<void>> {
  if (held.has(dir)) throw new EmbeddedRedisError(`this process already runs a redis-server on ${dir}`);
  await mkdir(dir, { recursive: true }).catch((e: Error) => {
    throw new EmbeddedRedisError(`cannot keep the embedded Redis's data in ${dir}: ${e.message}`);
  });
  const ownerFile = join(dir, OWNER_FILE);
  const me = JSON.stringify({ pid: process.pid, started: startTime(process.pid) });
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(ownerFile, me, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const text = await readFile(ownerFile, 'utf8').catch(() => null);
    if (text === null) continue; // released meanwhile
    const owner = parseOwner(text);
    if (!owner && text === '' && attempt < 20) {
      await sleep(50); // created, not yet written
      continue;
    }
    if (owner && owner.pid !== process.pid && running(owner.pid, owner.started)) {
      throw new EmbeddedRedisError(`another bot of this folder runs (pid ${owner.pid}); stop it, or set REDIS_URL`);
    }
    const aside = `${ownerFile}.${process.pid}.stale`;
    try {
      await rename(ownerFile, aside);
    } catch {
      continue; // someone else moved it first
    }
    const moved = await readFile(aside, 'utf8').catch(() => text);
    await rm(aside, { force: true });
    if (moved !== text) await writeFile(ownerFile, moved, { flag: 'wx' }).catch(() => undefined); // a newer owner's: put back
  }
  held.add(dir);
  const release = async () => {
    held.delete(dir);
    const text = await readFile(ownerFile, 'utf8').catch(() => null);
    if (text === me) await rm(ownerFile, { force: true });
  };
  try {
    await stopOrphan(dir);
  } catch (e) {
    await release();
    throw e;
  }
  return release;
}

/** A redis-server still running on `dir` (its pid file names a live redis-server) whose bot is gone: stops it. */
async function stopOrphan(dir: string): Promise<void> {
  const pid = Number((await readFile(join(dir, REDIS_PID_FILE), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0 || !running(pid)) return;
  if (!(await workingIn(pid, dir))) return; // the pid now belongs to another program (redis-server works in --dir)
  log.info(`stopping the redis-server (pid ${pid}) that a bot which did not stop cleanly left running on ${dir}`);
  await stopProcess(
    pid,
    () => process.kill(pid, 'SIGTERM'),
    () => process.kill(pid, 'SIGKILL'),
  );
}

/** SIGTERM, then waits for the process to be gone (SIGKILL after STOP_TIMEOUT_MS). */
async function stopProcess(
  pid: number | undefined,
  term: () => void,
  kill: () => void,
  child?: Promise<unknown>,
): Promise<void> {
  if (pid === undefined) return;
  const gone =
    child ??
    (async () => {
      while (running(pid)) await sleep(25);
    })();
  try {
    term();
  } catch {
    return; // gone already
  }
  const timer = new Promise<'late'>((r) => setTimeout(() => r('late'), STOP_TIMEOUT_MS).unref());
  if ((await Promise.race([gone.then(() => 'gone' as const), timer])) === 'late') {
    log.warn(`redis-server (pid ${pid}) still running ${STOP_TIMEOUT_MS / 1000} s after SIGTERM: killing it`);
    try {
      kill();
    } catch {
      // gone meanwhile
    }
    await gone;
  }
}

function parseOwner(text: string): { pid: number; started: string | null } | null {
  try {
    const o = JSON.parse(text) as { pid?: unknown; started?: unknown };
    if (typeof o.pid !== 'number' || !Number.isInteger(o.pid) || o.pid <= 0) return null;
    return { pid: o.pid, started: typeof o.started === 'string' ? o.started : null };
  } catch {
    return null;
  }
}

/** /proc/<pid>/stat: its state and its start time (clock ticks since boot), or undefined without /proc. */
function procStat(pid: number): { state: string; started: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // from field 3, state, on
    return { state: fields[0]!, started: fields[19]! };
  } catch {
    return undefined;
  }
}

function startTime(pid: number): string | null {
  return procStat(pid)?.started ?? null;
}

/** Whether a process works in `dir` (redis-server changes to its --dir); true where there is no /proc to ask. */
async function workingIn(pid: number, dir: string): Promise<boolean> {
  if (!existsSync('/proc/self/cwd')) return true;
  try {
    return (await readlink(`/proc/${pid}/cwd`)) === (await realpath(dir));
  } catch {
    return false;
  }
}

/**
 * Whether `pid` is a live process (not a zombie), and the one that started at `started` when that is known: a pid
 * reused by another process after a reboot or a container restart does not count.
 */
function running(pid: number, started?: string | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(pid);
  if (!stat) return true; // no /proc: the signal is all we know
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return !started || stat.started === started;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  child.then(
    () => (exited = true),
    () => (exited = true),
  );
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !exited) {
    if (await pingRedis(url)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
