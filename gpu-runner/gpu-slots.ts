/**
 * How many trainings one GPU of a host runs at once (JOBS_PER_GPU, 1 by default), however many runner processes are
 * pinned to it: a slot is a Redis key per GPU and index, taken with SET NX by the worker that starts a training,
 * renewed by its heartbeat and released when the training ends. A worker that dies holding one frees it when the key
 * lapses (three heartbeats), or at once for the worker that takes its job over: a slot names the job it trains, and
 * a job that another worker was given (BullMQ saw its lock lapse) is no longer trained by the slot's holder. The key
 * names the host, so GPUs of different hosts never share slots.
 */
import type { Redis } from 'ioredis';

import { RELEASE_IF_HOLDER } from '../src/redis.ts';

/** Renews the holder's slot, or takes it again if it lapsed (a Redis outage): 0 when another worker holds it now. */
const RENEW = `
local v = redis.call('get', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

/**
 * Takes the first slot that is free or held for the same job (its holder lost the job: a runner that died), as
 * ARGV[1] for ARGV[2] ms; ARGV[3] is the job's part of a slot's value. Returns the slot's index from 1, or 0.
 */
const TAKE = `
for i, key in ipairs(KEYS) do
  local v = redis.call('get', key)
  if v == false or string.sub(v, -string.len(ARGV[3])) == ARGV[3] then
    redis.call('set', key, ARGV[1], 'PX', ARGV[2])
    return i
  end
end
return 0`;

export class GpuSlots {
  private held: string | null = null;
  /** The held slot's value: the holder and the job it trains. */
  private value = '';

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** `host/gpuN` */
    readonly gpu: string,
    private readonly slots: number,
    /** Who holds a slot (the worker's name and pid): shown to whoever finds them all taken. */
    private readonly holder: string,
    private readonly ttlMs: number,
  ) {}

  private key = (i: number) => `${this.prefix}:gpu-slot:${this.gpu}:${i}`;

  /**
   * Takes a slot for training `jobId`: a free one, or the one a worker that lost this job still holds (it died, and
   * BullMQ gave the job to this worker); false when every slot is held for other jobs.
   */
  async take(jobId: string): Promise<boolean> {
    if (this.held) return true;
    const keys = Array.from({ length: this.slots }, (_, i) => this.key(i));
    const value = `${this.holder} · job ${jobId}`;
    const index = Number(await this.redis.eval(TAKE, keys.length, ...keys, value, this.ttlMs, ` · job ${jobId}`));
    if (index === 0) return false;
    this.held = keys[index - 1]!;
    this.value = value;
    return true;
  }

  /** Whether a slot is free now (a paused worker asks before it fetches again). */
  async anyFree(): Promise<boolean> {
    const taken = await this.redis.exists(...Array.from({ length: this.slots }, (_, i) => this.key(i)));
    return taken < this.slots;
  }

  /** Who holds the slots (for a log line). */
  async holders(): Promise<string[]> {
    const values = await this.redis.mget(...Array.from({ length: this.slots }, (_, i) => this.key(i)));
    return values.filter((v): v is string => v !== null);
  }

  /** Keeps the slot of a training in progress; false when it lapsed and another worker took it meanwhile. */
  async renew(): Promise<boolean> {
    if (!this.held) return true;
    return (await this.redis.eval(RENEW, 1, this.held, this.value, this.ttlMs)) === 1;
  }

  async release(): Promise<void> {
    const key = this.held;
    this.held = null;
    if (key) await this.redis.eval(RELEASE_IF_HOLDER, 1, key, this.value);
  }
}
