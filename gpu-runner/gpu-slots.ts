/**
 * How many trainings one GPU of a host runs at once (JOBS_PER_GPU, 1 by default), however many runner processes are
 * pinned to it: a slot is a Redis key per GPU and index, taken with SET NX by the worker that starts a training,
 * renewed by its heartbeat and released when the training ends. A worker that dies holding one frees it when the key
 * lapses (three heartbeats). The key names the host, so GPUs of different hosts never share slots.
 */
import type { Redis } from 'ioredis';

/** Compare-and-renew and compare-and-delete: only the holder touches its slot. */
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

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

  async renew(): Promise<void> {
    if (this.held) await this.redis.eval(RENEW, 1, this.held, this.holder, this.ttlMs);
  }

  async release(): Promise<void> {
    const key = this.held;
    this.held = null;
    if (key) await this.redis.eval(RELEASE, 1, key, this.holder);
  }
}
