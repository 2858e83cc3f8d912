/**
 * How many trainings one GPU of a host runs at once (JOBS_PER_GPU, 1 by default), however many runner processes are
 * pinned to it: a slot is a Redis key per GPU and index, taken with SET NX by the worker that starts a training,
 * renewed by its heartbeat and released when the training ends. A slot names the job it trains: a worker that dies
 * holding one frees it as soon as that job's BullMQ lock lapses (nothing trains the job then), and at once for the
 * worker BullMQ gives the job to; else when the key lapses (three heartbeats). A holder cut off from Redis longer
 * than the job's lock may still train: its renewal then fails and it warns that two trainings may share the GPU.
 * The key names the host, so GPUs of different hosts never share slots.
 */
import type { Redis } from 'ioredis';

import { RELEASE_IF_HOLDER } from '../src/shared/redis.ts';

/** Renews the holder's slot, or takes it again if it lapsed (a Redis outage): 0 when another worker holds it now. */
const RENEW = `
local v = redis.call('get', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

/**
 * Lua: whether slot value `v` is held for a training that goes on: false when its job's BullMQ lock is gone (its
 * holder died: nothing trains that job) or, with `mine`, when it names the job this worker was given (BullMQ took it
 * from the holder). ARGV[4]: the key prefix of the training queue's jobs.
 */
const HELD = `
local function held(v, mine)
  if v == false then return false end
  local job = string.match(v, ' · job (.+)$')
  if job == nil then return true end
  if mine ~= nil and job == mine then return false end
  return redis.call('exists', ARGV[4] .. job .. ':lock') == 1
end`;

/** Takes the first slot not held for a training that goes on (see HELD) as ARGV[1] for ARGV[2] ms; ARGV[3]: the job. */
const TAKE = `${HELD}
for i, key in ipairs(KEYS) do
  if not held(redis.call('get', key), ARGV[3]) then
    redis.call('set', key, ARGV[1], 'PX', ARGV[2])
    return i
  end
end
return 0`;

/** How many slots are free, or held by a worker that lost its job. */
const FREE = `${HELD}
local free = 0
for _, key in ipairs(KEYS) do
  if not held(redis.call('get', key), nil) then free = free + 1 end
end
return free`;

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
    /** The key prefix of the training queue's jobs (`<prefix>:train:`): a job's lock says whether it still trains. */
    private readonly jobKeyPrefix: string,
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
    const index = Number(
      await this.redis.eval(TAKE, keys.length, ...keys, value, this.ttlMs, jobId, this.jobKeyPrefix),
    );
    if (index === 0) return false;
    this.held = keys[index - 1]!;
    this.value = value;
    return true;
  }

  /** Whether a slot is free now (a paused worker asks before it fetches again). */
  async anyFree(): Promise<boolean> {
    const keys = Array.from({ length: this.slots }, (_, i) => this.key(i));
    return Number(await this.redis.eval(FREE, keys.length, ...keys, '', '', '', this.jobKeyPrefix)) > 0;
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
