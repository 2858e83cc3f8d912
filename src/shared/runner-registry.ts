/**
 * Which runners exist and what they are doing, in Redis: every runner worker (one per GPU) writes a heartbeat every
 * few seconds into a key that lapses after three missed beats, and a copy into a hash that outlives it, so /runners
 * can show live workers and, apart, the ones that went silent (a host that crashed or lost its network). A worker
 * that stops on purpose removes both. Liveness is Redis's own TTL: hosts' clocks never have to agree.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { orUnavailable } from './errors.ts';
import { parseJsonOrNull } from './jobs.ts';

/** A runner's host name (RUNNER_HOST) and a GPU class (GPU_CLASS), as settings and as /train's options take them. */
export const HOST_NAME_RE = /^[A-Za-z0-9._-]{1,63}$/;
export const GPU_CLASS_RE = /^[A-Za-z0-9._-]{1,32}$/;

export const RunnerBeat = z.object({
  /** `host/gpuN`, or the host alone for a runner without GPU_ID; `#2`… for a second process on one GPU. */
  name: z.string().min(1),
  /** This process (random at its start): only it may renew or remove its entry. */
  instance: z.string().default(''),
  host: z.string().min(1),
  gpuId: z.number().int().nullable(),
  /** What /train's `gpu` option matches: `h100`, `a100`… (from the GPU's name, or GPU_CLASS), `cpu` on the CPU. */
  gpuClass: z.string(),
  backend: z.string(),
  /** The accelerator's name and memory, or the host's memory on the CPU backend; null when it could not be read. */
  device: z
    .object({ kind: z.enum(['cuda', 'cpu']), model: z.string(), usedMiB: z.number(), totalMiB: z.number() })
    .nullable(),
  /** Why `device` is null (nvidia-smi missing or failing). */
  deviceError: z.string().optional(),
  /** The id of the models folder this runner writes (src/shared/model-registry.ts): the bot's own when storage is shared. */
  modelsId: z.string().nullable().default(null),
  job: z
    .object({
      id: z.string(),
      profile: z.string(),
      step: z.number().int(),
      maxSteps: z.number().int(),
      requestedBy: z.string(),
    })
    .nullable(),
  /** What keeps an idle worker from taking jobs (a GPU whose slots other workers hold). */
  waitingFor: z.string().nullable().default(null),
  startedAt: z.string(),
  /** How often it beats (ms): a beat that is late by half of that again shows the runner as late in /runners. */
  beatMs: z.number().positive().optional(),
  /** The runner's clock at this beat: shown as "last seen", never used to decide liveness. */
  seenAt: z.string().refine((s) => Number.isFinite(Date.parse(s)), 'a date'),
});
export type RunnerBeat = z.infer<typeof RunnerBeat>;

export interface RunnerView extends RunnerBeat {
  live: boolean;
  /** Since its last beat, on Redis's clock (its liveness key's age); null when unknown. */
  sinceBeatMs?: number | null;
}

/** A runner is live for this many beats after its last one (its liveness key's time to live). */
export const ALIVE_BEATS = 3;

/** A silent runner is forgotten after this long (a host taken out of the fleet for good). */
const FORGET_SILENT_AFTER_MS = 7 * 24 * 3600 * 1000;

// A name's liveness key holds the instance id of the process that has the name, for as long as its beats keep it;
// the hash of runners seen holds each name's last beat.
/** Writes a beat unless another live process (another instance) holds the name. */
const BEAT = `
local cur = redis.call('get', KEYS[1])
if cur and cur ~= ARGV[2] then return 0 end
redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('hset', KEYS[2], ARGV[4], ARGV[1])
return 1`;
/** Removes the entry of a process that leaves, unless another process holds the name by now. */
const LEAVE = `
local cur = redis.call('get', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
local raw = redis.call('hget', KEYS[2], ARGV[2])
if raw then
  local ok, d = pcall(cjson.decode, raw)
  if not (ok and type(d) == 'table' and d.instance == ARGV[1]) then return 0 end
end
redis.call('del', KEYS[1])
redis.call('hdel', KEYS[2], ARGV[2])
return 1`;

export class RunnerRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private aliveKey = (name: string) => `${this.prefix}:runners:alive:${name}`;
  private get seenKey() {
    return `${this.prefix}:runners:seen`;
  }

  /**
   * A name no live worker has: `base` (host/gpuN), or `base#2`, `#3`… for a second process pinned to the same GPU.
   * A runner restarted after its old heartbeat lapsed gets its old name back, and its silent entry with it.
   */
  async claim(base: string, beatFor: (name: string) => RunnerBeat, ttlMs: number): Promise<string> {
    for (let i = 1; i <= 32; i++) {
      const name = i === 1 ? base : `${base}#${i}`;
      const beat = RunnerBeat.parse(beatFor(name));
      if ((await this.redis.set(this.aliveKey(name), beat.instance, 'PX', ttlMs, 'NX')) === 'OK') {
        await this.redis.hset(this.seenKey, name, JSON.stringify(beat));
        return name;
      }
    }
    throw new Error(`32 live runners are named ${base} already: give this one its own GPU_ID or RUNNER_HOST`);
  }

  /**
   * One heartbeat: alive for `ttlMs`, and the last word kept for when it goes silent. False (and nothing written)
   * when another live process holds the name: this one was cut off longer than its heartbeat and must claim anew.
   */
  async beat(beat: RunnerBeat, ttlMs: number): Promise<boolean> {
    const json = JSON.stringify(RunnerBeat.parse(beat));
    return (
      (await this.redis.eval(
        BEAT,
        2,
        this.aliveKey(beat.name),
        this.seenKey,
        json,
        beat.instance,
        ttlMs,
        beat.name,
      )) === 1
    );
  }

  /** A runner stopping on purpose leaves the list (it did not go silent); only the process that holds the name. */
  async leave(name: string, instance: string): Promise<void> {
    await this.redis.eval(LEAVE, 2, this.aliveKey(name), this.seenKey, instance, name);
  }

  /** Every runner seen: live ones first, then silent ones, each by name. A command's deadline on Redis. */
  async list(now = Date.now()): Promise<RunnerView[]> {
    const seen = await orUnavailable(this.redis.hgetall(this.seenKey));
    const names = Object.keys(seen).sort();
    if (names.length === 0) return [];
    // each liveness key's time left (-2: gone): a beat sets it to three beats, so what is missing is the time since
    const left = (await orUnavailable(this.redis.pipeline(names.map((n) => ['pttl', this.aliveKey(n)])).exec())) ?? [];
    const views: RunnerView[] = [];
    const forget: string[] = [];
    names.forEach((name, i) => {
      const ttl = Number(left[i]?.[1] ?? -2);
      const live = ttl !== -2;
      const parsed = RunnerBeat.safeParse(parseJsonOrNull(seen[name]!));
      if (!parsed.success) return;
      const beatMs = parsed.data.beatMs;
      const sinceBeatMs = live && beatMs && ttl > 0 ? Math.max(0, ALIVE_BEATS * beatMs - ttl) : null;
      if (!live && now - Date.parse(parsed.data.seenAt) > FORGET_SILENT_AFTER_MS) forget.push(name);
      else views.push({ ...parsed.data, live, sinceBeatMs });
    });
    if (forget.length) await this.redis.hdel(this.seenKey, ...forget);
    return views.sort((a, b) => Number(b.live) - Number(a.live) || a.name.localeCompare(b.name));
  }
}

/**
 * Whether a runner may take a job that asked for a host or a GPU class. Host: the runner's host name, or one GPU of
 * it (`box/gpu1`: every process pinned to that GPU, whatever `#N` its name has); class: its GPU class. Both
 * case-insensitive; a job that asked for nothing runs anywhere.
 */
/** The name of one GPU of a host, as workers pinned to it are called and as jobs may target it: `box/gpu1`. */
export function gpuName(host: string, gpuId: number): string {
  return `${host}/gpu${gpuId}`;
}

export function runnerMatches(
  runner: Pick<RunnerBeat, 'host' | 'gpuId' | 'gpuClass'>,
  target: { host?: string; gpu?: string } | undefined,
): boolean {
  if (!target) return true;
  const eq = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  const gpu = runner.gpuId !== null ? gpuName(runner.host, runner.gpuId) : null;
  if (target.host !== undefined && !eq(target.host, runner.host) && !(gpu && eq(target.host, gpu))) return false;
  if (target.gpu !== undefined && !eq(target.gpu, runner.gpuClass)) return false;
  return true;
}
