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

export const RunnerBeat = z.object({
  /** `host/gpuN`, or the host alone for a runner without GPU_ID. */
  name: z.string().min(1),
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
  /** The id of the models folder this runner writes (src/model-registry.ts): the bot's own when storage is shared. */
  modelsId: z.string().nullable().default(null),
  job: z
    .object({ id: z.string(), profile: z.string(), step: z.number().int(), maxSteps: z.number().int(), requestedBy: z.string() })
    .nullable(),
  startedAt: z.string(),
  /** The runner's clock at this beat: shown as "last seen", never used to decide liveness. */
  seenAt: z.string(),
});
export type RunnerBeat = z.infer<typeof RunnerBeat>;

export interface RunnerView extends RunnerBeat {
  live: boolean;
}

/** A silent runner is forgotten after this long (a host taken out of the fleet for good). */
export const FORGET_SILENT_AFTER_MS = 7 * 24 * 3600 * 1000;

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
      const json = JSON.stringify(RunnerBeat.parse(beatFor(name)));
      if ((await this.redis.set(this.aliveKey(name), json, 'PX', ttlMs, 'NX')) === 'OK') {
        await this.redis.hset(this.seenKey, name, json);
        return name;
      }
    }
    throw new Error(`32 live runners are named ${base} already: give this one its own GPU_ID or RUNNER_HOST`);
  }

  /** One heartbeat: alive for `ttlMs`, and the last word kept for when it goes silent. */
  async beat(beat: RunnerBeat, ttlMs: number): Promise<void> {
    const json = JSON.stringify(RunnerBeat.parse(beat));
    await this.redis.multi().set(this.aliveKey(beat.name), json, 'PX', ttlMs).hset(this.seenKey, beat.name, json).exec();
  }

  /** A runner stopping on purpose leaves the list (it did not go silent). */
  async leave(name: string): Promise<void> {
    await this.redis.multi().del(this.aliveKey(name)).hdel(this.seenKey, name).exec();
  }

  /** Every runner seen: live ones first, then silent ones, each by name. A command's deadline on Redis. */
  async list(now = Date.now()): Promise<RunnerView[]> {
    const seen = await orUnavailable(this.redis.hgetall(this.seenKey));
    const names = Object.keys(seen).sort();
    if (names.length === 0) return [];
    const alive = await orUnavailable(this.redis.mget(names.map(this.aliveKey)));
    const views: RunnerView[] = [];
    const forget: string[] = [];
    names.forEach((name, i) => {
      const live = alive[i] !== null;
      const parsed = RunnerBeat.safeParse(parseJsonOrNull((live ? alive[i] : seen[name]) ?? ''));
      if (!parsed.success) return;
      if (!live && now - Date.parse(parsed.data.seenAt) > FORGET_SILENT_AFTER_MS) forget.push(name);
      else views.push({ ...parsed.data, live });
    });
    if (forget.length) await this.redis.hdel(this.seenKey, ...forget);
    return views.sort((a, b) => Number(b.live) - Number(a.live) || a.name.localeCompare(b.name));
  }
}

/**
 * Whether a runner may take a job that asked for a host or a GPU class. Host: the runner's host name or its full
 * name (`box/gpu1`); class: its GPU class. Both case-insensitive; a job that asked for nothing runs anywhere.
 */
export function runnerMatches(runner: Pick<RunnerBeat, 'name' | 'host' | 'gpuClass'>, target: { host?: string; gpu?: string } | undefined): boolean {
  if (!target) return true;
  const eq = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  if (target.host !== undefined && !eq(target.host, runner.host) && !eq(target.host, runner.name)) return false;
  if (target.gpu !== undefined && !eq(target.gpu, runner.gpuClass)) return false;
  return true;
}
