/**
 * The GPU runner: a BullMQ worker that takes one training job at a time (per GPU) and one that answers asks, a
 * presence in the fleet, and the cancels that any bot process sends on a Redis channel. The parts are their own
 * modules (presence.ts, training.ts, asking.ts, gpu-slots.ts); this one puts them together and takes them apart.
 */
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../src/shared/config.ts';
import { ASK_QUEUE, keys, TRAIN_QUEUE, type AskResult, type TrainResult } from '../src/shared/jobs.ts';
import { logger } from '../src/shared/log.ts';
import { closeRedis, connectionErrorOr, duplicateRedis } from '../src/shared/redis.ts';
import { answerAsk, GpuTurns } from './asking.ts';
import { GpuSlots } from './gpu-slots.ts';
import { InferenceProcess } from './inference-process.ts';
import { Presence } from './presence.ts';
import { processTrainJob, SHUTDOWN, SlotWait, type TrainingDeps } from './training.ts';

export { TRAINER_SCRIPT, trainerArgs } from './training.ts';

const log = logger('runner');
/**
 * How often a runner looks for jobs whose runner died (BullMQ's stalled check; one check per queue, whichever runner
 * makes it), at most: a dead runner's job goes back to the queue within JOB_LOCK_MS and this after its last renewal.
 */
export const stalledCheckMs = (config: Config) => Math.min(5_000, config.jobLockMs / 2);
/** The least a GPU slot lives without renewal: a short Redis outage must not free a GPU that is training. */
const SLOT_MIN_TTL_MS = 10_000;

export interface RunnerOptions {
  config: Config;
  /** A Redis connection the runner may use for commands; it opens its own for blocking calls. */
  connection: Redis;
  /** BullMQ's stalled-job check interval (ms); tests shorten it. */
  stalledInterval?: number;
  /** Called when a job has been taken and its trainer is about to start (metrics, benchmarks). */
  onJobStart?: (jobId: string) => void;
}

export interface Runner {
  worker: Worker;
  askWorker: Worker;
  inference: InferenceProcess;
  /** The name it has in /runners now. */
  readonly name: string;
  close(): Promise<void>;
}

export async function startRunner({ config, connection, stalledInterval, onJobStart }: RunnerOptions): Promise<Runner> {
  const prefix = config.queuePrefix;
  const presence = await Presence.claim(config, connection);
  const { gpuKey } = presence;
  // A slot outlives a short Redis outage (10 s at least) so that a training in progress keeps its GPU.
  const slotMs = Math.max(presence.aliveMs, SLOT_MIN_TTL_MS);
  const slots = gpuKey
    ? new GpuSlots(
        connection,
        prefix,
        gpuKey,
        config.jobsPerGpu,
        `${presence.name} (pid ${process.pid})`,
        slotMs,
        `${prefix}:${TRAIN_QUEUE}:`,
      )
    : null;
  // The slot is renewed apart from the heartbeat (which waits on nvidia-smi), at the same pace.
  const renewing = setInterval(() => {
    void slots?.renew().then(
      (kept) => {
        if (!kept)
          log.warn(
            `the GPU slot on ${gpuKey} lapsed during a training (a Redis outage?) and another worker holds it: two trainings may share the GPU`,
          );
      },
      (e: Error) => log.debug(`slot not renewed (Redis?): ${e.message}`),
    );
  }, presence.heartbeatMs);
  renewing.unref();

  const inference = new InferenceProcess(config);
  const turns = new GpuTurns(config, inference, (): Worker => askWorker);
  const slotWait = slots ? new SlotWait(config, presence, slots, (): Worker => worker) : null;
  const deps: TrainingDeps = { config, connection, presence, slots, slotWait, turns, onJobStart };
  const worker: Worker = new Worker(
    TRAIN_QUEUE,
    (job, token, signal): Promise<TrainResult> => processTrainJob(deps, job, token, signal),
    {
      connection,
      prefix,
      concurrency: 1,
      autorun: false,
      // A runner that dies keeps its job's lock until it lapses; then any runner's stalled check puts the job back
      // to be taken again (and resumed). Twice at most: a job that takes its runners down every time then fails.
      lockDuration: config.jobLockMs,
      stalledInterval: stalledInterval ?? stalledCheckMs(config),
      maxStalledCount: 2,
    },
  );
  worker.on(
    'error',
    connectionErrorOr((e) => log.error('worker error', e)),
  );

  // Asks: the resident inference worker (started by the first ask), one answer at a time, streamed as job progress.
  const askWorker: Worker = new Worker(
    ASK_QUEUE,
    (job): Promise<AskResult> =>
      answerAsk(config, inference, turns, presence.device.device?.kind === 'cpu' ? 'CPU' : 'GPU', job),
    {
      connection,
      prefix,
      concurrency: 1,
      autorun: false,
      stalledInterval: stalledInterval ?? stalledCheckMs(config),
    },
  );
  askWorker.on(
    'error',
    connectionErrorOr((e) => log.error('ask worker error', e)),
  );

  const subscriber = duplicateRedis(connection);
  await subscriber.subscribe(keys.cancelChannel(prefix));
  subscriber.on('message', (_channel, jobId: string) => {
    if (worker.cancelJob(jobId, 'cancelled')) log.info(`job ${jobId}: cancel requested`);
  });

  void worker.run();
  void askWorker.run();
  await Promise.all([worker.waitUntilReady(), askWorker.waitUntilReady()]);
  const shares = gpuKey ? `, ${config.jobsPerGpu} at a time on ${gpuKey}` : '';
  log.info(
    `runner ${presence.name} is taking training jobs (backend ${config.trainerBackend}, class ${presence.gpuClass}${shares})`,
  );
  return {
    worker,
    askWorker,
    inference,
    get name() {
      return presence.name;
    },
    async close() {
      presence.stopBeating();
      slotWait?.close();
      clearInterval(renewing);
      worker.cancelAllJobs(SHUTDOWN);
      await Promise.all([worker.close(), askWorker.close()]);
      await inference.stop();
      await closeRedis(subscriber);
      await presence.leave();
    },
  };
}
