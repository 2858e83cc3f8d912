/**
 * How many trainings one GPU of a host runs at once (JOBS_PER_GPU, 1 by default), however many runner processes are
 * pinned to it: a slot is a Redis key per GPU and index, taken with SET NX by the worker that starts a training,
 * renewed by its heartbeat and released when the training ends. A worker that dies holding one frees it when the key
 * lapses (three heartbeats). The key names the host, so GPUs of different hosts never share slots.
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

export class GpuSlots {
  private held: string | null = null;

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

  /** Takes a free slot; false when every slot is held (by other workers). */
  async take(): Promise<boolean> {
    if (this.held) return true;
    for (let i = 0; i < this.slots; i++) {
      if ((await this.redis.set(this.key(i), this.holder, 'PX', this.ttlMs, 'NX')) === 'OK') {
        this.held = this.key(i);
        return true;
      }
    }
    return false;
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
    return (await this.redis.eval(RENEW, 1, this.held, this.holder, this.ttlMs)) === 1;
  }

  async release(): Promise<void> {
    const key = this.held;
    this.held = null;
    if (key) await this.redis.eval(RELEASE_IF_HOLDER, 1, key, this.holder);
  }
}
