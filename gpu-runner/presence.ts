/**
 * A runner's presence in the fleet: the name it claims (`host`, `host/gpu1`, `host/gpu1#2`), the device it probed, and
 * the heartbeat that tells /runners what it does now (the job at its step, or what it waits for). A worker cut off
 * from Redis for longer than its heartbeat finds its name taken by then and claims the next free one.
 */
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import type { Config } from '../src/shared/config.ts';
import { logger } from '../src/shared/log.ts';
import { modelsFolderId } from '../src/shared/model-registry.ts';
import { ALIVE_BEATS, gpuName, RunnerRegistry, type RunnerBeat } from '../src/shared/runner-registry.ts';
import { gpuClassOf, probeDevice, type DeviceReport } from './devices.ts';
import { latestOnly } from './latest-only.ts';

const log = logger('runner');

export class Presence {
  /** The job this worker trains now, as its heartbeat reports it (the step too). */
  current: RunnerBeat['job'] = null;
  /** What the worker waits for before it takes a job (a free slot on its GPU), or null. */
  waitingFor: string | null = null;
  private failedBeats = 0;
  private beating?: NodeJS.Timeout;
  private readonly beat = latestOnly(() => this.sendBeat());
  private readonly instance = randomBytes(6).toString('hex');
  private readonly startedAt = new Date().toISOString();

  private constructor(
    private readonly config: Config,
    private readonly registry: RunnerRegistry,
    /** The shared GPU this worker trains on (`host/gpuN`); null for the CPU backend without GPU_ID. */
    readonly gpuKey: string | null,
    private readonly baseName: string,
    private readonly modelsId: string | null,
    public device: DeviceReport,
    public gpuClass: string,
    public name: string,
  ) {}

  /** Probes the device, then claims a name: the GPU's name gives the class that jobs may ask for. */
  static async claim(config: Config, connection: Redis): Promise<Presence> {
    const modelsId = await modelsFolderId(config.modelsDir).catch((e: Error) => {
      log.warn(`the models folder ${config.modelsDir} has no readable id: ${e.message}`);
      return null;
    });
    const device = await probeDevice(config.trainerBackend, config.gpuId);
    // One GPU, however many workers are pinned to it, trains JOBS_PER_GPU jobs at once. The CPU backend without GPU_ID
    // has no GPU to share. `host/gpuN` is also the worker's name (a second process on the GPU: `host/gpuN#2`).
    const host = config.runnerHost;
    const gpuKey =
      config.gpuId !== undefined
        ? gpuName(host, config.gpuId)
        : config.trainerBackend === 'cpu'
          ? null
          : gpuName(host, 0);
    // Named after its GPU only when pinned to one (GPU_ID): the name that `host=box/gpu1` targets match.
    const baseName = config.gpuId !== undefined ? gpuKey! : host;
    const registry = new RunnerRegistry(connection, config.queuePrefix);
    const presence = new Presence(config, registry, gpuKey, baseName, modelsId, device, classOf(config, device), '');
    presence.name = await registry.claim(baseName, (name) => presence.beatOf(name), presence.aliveMs);
    presence.beating = setInterval(() => presence.beat.push(), presence.heartbeatMs);
    presence.beating.unref();
    return presence;
  }

  get heartbeatMs(): number {
    return this.config.runnerHeartbeatS * 1000;
  }

  /** How long a name stays taken without a beat. */
  get aliveMs(): number {
    return ALIVE_BEATS * this.heartbeatMs;
  }

  /** Where this worker is, as a job's target is matched against it. */
  get where() {
    return { host: this.config.runnerHost, gpuId: this.config.gpuId ?? null, gpuClass: this.gpuClass };
  }

  /** Beats now (after the pace's own beats): the job or the wait changed. */
  push(): void {
    this.beat.push();
  }

  /** No more beats at the pace (a runner shutting down). */
  stopBeating(): void {
    clearInterval(this.beating);
  }

  /** Leaves the list once the last beat is out: stopped on purpose, the runner is gone, not "silent". */
  async leave(): Promise<void> {
    this.stopBeating();
    await this.beat.flush();
    await this.registry
      .leave(this.name, this.instance)
      .catch((e: Error) => log.warn(`could not leave the runner list: ${e.message}`));
  }

  private beatOf(name: string): RunnerBeat {
    const { config, device } = this;
    return {
      name,
      instance: this.instance,
      host: config.runnerHost,
      gpuId: config.gpuId ?? null,
      gpuClass: this.gpuClass,
      backend: config.trainerBackend,
      ...device,
      modelsId: this.modelsId,
      job: this.current,
      waitingFor: this.waitingFor,
      beatMs: this.heartbeatMs,
      startedAt: this.startedAt,
      seenAt: new Date().toISOString(),
    };
  }

  private async sendBeat(): Promise<void> {
    try {
      // again at every beat: nvidia-smi may not have answered at the start
      this.device = await probeDevice(this.config.trainerBackend, this.config.gpuId);
      if (this.gpuClass === 'unknown') this.gpuClass = classOf(this.config, this.device);
      if (!(await this.registry.beat(this.beatOf(this.name), this.aliveMs))) {
        // this worker was cut off for longer than its heartbeat and another process took its name meanwhile
        const old = this.name;
        this.name = await this.registry.claim(this.baseName, (name) => this.beatOf(name), this.aliveMs);
        log.warn(`the runner name ${old} was taken while this worker was cut off from Redis; it is now ${this.name}`);
      }
      this.failedBeats = 0;
    } catch (e) {
      if (++this.failedBeats === 3)
        log.warn(
          `3 heartbeats in a row failed (Redis?): /runners shows this worker as silent: ${(e as Error).message}`,
        );
      throw e;
    }
  }
}

/** The class a job may ask for: GPU_CLASS, else the GPU's own (`h100`), `cpu`, or `unknown` until nvidia-smi answers. */
function classOf(config: Config, d: DeviceReport): string {
  return config.gpuClass ?? (d.device ? (d.device.kind === 'cpu' ? 'cpu' : gpuClassOf(d.device.model)) : 'unknown');
}
