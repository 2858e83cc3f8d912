/**
 * The GPU runner: a BullMQ worker that takes one training job at a time (per GPU), runs the trainer, and reports the
 * trainer's messages as job progress. Cancels arrive on a Redis channel from any bot process, and the runner also
 * reads the job's cancel flag at pickup and at every step, so a cancel sent while it was reconnecting still lands.
 */
import { DelayedError, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT, type Config } from '../src/shared/config.ts';
import { ASK_QUEUE, AskJobData, cancelledLine, keys, PRIORITY_TARGETED, readCancelFlag, timedSteps, TRAIN_QUEUE, TrainJobData, TrainProgress, type AskResult, type TrainResult } from '../src/shared/jobs.ts';
import { logger } from '../src/shared/log.ts';
import { markFolder, ModelRegistry, modelsFolderId } from '../src/shared/model-registry.ts';
import { closeRedis, connectionErrorOr, duplicateRedis } from '../src/shared/redis.ts';
import { ALIVE_BEATS, RunnerRegistry, gpuName, runnerMatches, type RunnerBeat } from '../src/shared/runner-registry.ts';
import { gpuClassOf, probeDevice, type DeviceReport } from './devices.ts';
import { GpuSlots } from './gpu-slots.ts';
import { PublishFailed, publishModel } from './publish.ts';
import { AskRefused, InferenceProcess } from './inference-process.ts';
import { INTERRUPT, runTrainer, TrainerFailed } from './trainer-process.ts';

const log = logger('runner');
export const TRAINER_SCRIPT = join(REPO_ROOT, 'gpu-runner/trainer/train.py');
const SHUTDOWN = 'the runner is shutting down';
/** A job for another host or GPU class goes back for this long, while this worker takes the next one. */
const NOT_MINE_DELAY_MS = 2_000;
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
  name: string;
  close(): Promise<void>;
}

/**
 * The trainer's command-line arguments for a job: every value is one array element (never shell text), and values
 * a user chose are joined to their flag with `=`, so one that starts with `-` cannot pass for an option. `resume`:
 * the folder an earlier attempt of this job started (its runner died), continued from its newest checkpoint.
 */
export function trainerArgs(config: Config, data: TrainJobData, jobId: string, resume?: string): string[] {
  const args = [`--profile=${data.profile}`, `--models-dir=${trainingDir(config)}`, `--dataset=${config.dataset}`];
  args.push(`--base-model=${config.baseModel}`, `--backend=${config.trainerBackend}`, `--job-id=${jobId}`);
  args.push(`--requested-by=${data.requestedBy.name} (${data.requestedBy.platform})`);
  if (data.r !== undefined) args.push(`--r=${data.r}`);
  if (data.scheduler !== undefined) args.push(`--scheduler=${data.scheduler}`);
  if (config.gpuId !== undefined) args.push(`--gpu=${config.gpuId}`);
  if (resume !== undefined) args.push(`--resume=${resume}`);
  return args;
}

/** Where this runner's trainer writes: its own disk when it publishes to a shared folder, else the models folder. */
const trainingDir = (config: Config) => config.localModelsDir ?? config.modelsDir;

/**
 * Why the runner cannot write into `dir` (or its nearest existing parent, where the trainer would make it), as one
 * line for the channel with what to do; null when it can. A read-only mount or a folder of another user.
 */
async function unwritable(dir: string, name: string, setting: string): Promise<string | null> {
  for (let d = dir; ; d = join(d, '..')) {
    try {
      await access(d, constants.W_OK);
      return null;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && d !== '/') continue;
      log.warn(`the models folder ${dir} cannot be written (${code})`);
      const cause = code === 'EROFS' ? 'is on a read-only filesystem' : code === 'EACCES' || code === 'EPERM' ? "is not writable by the runner's user" : `cannot be written (${code})`;
      return `the models folder on ${name} ${cause}: make it writable (or point ${setting} at a folder that is), then /train again`;
    }
  }
}

/** Free bytes on the disk that holds `dir` (or its nearest existing parent). */
async function freeBytes(dir: string): Promise<number> {
  for (let d = dir; ; d = join(d, '..')) {
    try {
      const s = await statfs(d);
      return s.bavail * s.bsize;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || d === '/') throw e;
    }
  }
}

/** Runs `send` for the newest state, one call at a time: a slow or unreachable Redis never holds up the trainer. */
function latestOnly(send: () => Promise<void>): { push(): void; flush(): Promise<void> } {
  let running: Promise<void> | null = null;
  let again = false;
  const loop = async () => {
    do {
      again = false;
      await send().catch((e: Error) => log.debug(`progress not reported (Redis?): ${e.message}`));
    } while (again);
    running = null;
  };
  return {
    push() {
      if (running) again = true;
      else running = loop();
    },
    flush: async () => {
      await running;
    },
  };
}

export async function startRunner({ config, connection, stalledInterval, onJobStart }: RunnerOptions): Promise<Runner> {
  const prefix = config.queuePrefix;
  const host = config.runnerHost;
  const registry = new RunnerRegistry(connection, prefix);
  const heartbeatMs = config.runnerHeartbeatS * 1000;
  const aliveMs = ALIVE_BEATS * heartbeatMs;
  const startedAt = new Date().toISOString();
  const instance = randomBytes(6).toString('hex');
  const modelsId = await modelsFolderId(config.modelsDir).catch((e: Error) => (log.warn(`the models folder ${config.modelsDir} has no readable id: ${e.message}`), null));
  // The device first: the GPU's name gives the class that jobs may ask for (again at a later beat if nvidia-smi
  // could not answer now).
  let device = await probeDevice(config.trainerBackend, config.gpuId);
  const classOf = (d: DeviceReport) => config.gpuClass ?? (d.device ? (d.device.kind === 'cpu' ? 'cpu' : gpuClassOf(d.device.model)) : 'unknown');
  let gpuClass = classOf(device);
  /** The job this worker trains now, and what it waits for, as its heartbeat reports them. */
  let current: RunnerBeat['job'] = null;
  let waitingFor: string | null = null;
  const beatOf = (name: string): RunnerBeat => ({
    name, instance, host, gpuId: config.gpuId ?? null, gpuClass, backend: config.trainerBackend, ...device, modelsId,
    job: current, waitingFor, beatMs: heartbeatMs, startedAt, seenAt: new Date().toISOString(),
  });
  // One GPU, however many workers are pinned to it, trains JOBS_PER_GPU jobs at once. The CPU backend without GPU_ID
  // has no GPU to share. `host/gpuN` is also the worker's name (a second process on the GPU: `host/gpuN#2`).
  const gpuKey = config.gpuId !== undefined ? gpuName(host, config.gpuId) : config.trainerBackend === 'cpu' ? null : gpuName(host, 0);
  // Named after its GPU only when pinned to one (GPU_ID): the name that `host=box/gpu1` targets match.
  const baseName = config.gpuId !== undefined ? gpuKey! : host;
  let name = await registry.claim(baseName, beatOf, aliveMs);
  // A slot outlives a short Redis outage (10 s at least) so that a training in progress keeps its GPU.
  const slotMs = Math.max(aliveMs, SLOT_MIN_TTL_MS);
  const slots = gpuKey ? new GpuSlots(connection, prefix, gpuKey, config.jobsPerGpu, `${name} (pid ${process.pid})`, slotMs, `${prefix}:${TRAIN_QUEUE}:`) : null;
  let waitingForSlot: NodeJS.Timeout | null = null;
  let closing = false;

  let failedBeats = 0;
  const heartbeat = latestOnly(async () => {
    try {
      device = await probeDevice(config.trainerBackend, config.gpuId);
      if (gpuClass === 'unknown') gpuClass = classOf(device);
      if (!(await registry.beat(beatOf(name), aliveMs))) {
        // this worker was cut off for longer than its heartbeat and another process took its name meanwhile
        const old = name;
        name = await registry.claim(baseName, beatOf, aliveMs);
        log.warn(`the runner name ${old} was taken while this worker was cut off from Redis; it is now ${name}`);
      }
      failedBeats = 0;
    } catch (e) {
      if (++failedBeats === 3) log.warn(`3 heartbeats in a row failed (Redis?): /runners shows this worker as silent: ${(e as Error).message}`);
      throw e;
    }
  });
  const beating = setInterval(() => heartbeat.push(), heartbeatMs);
  beating.unref();
  // The slot is renewed apart from the heartbeat (which waits on nvidia-smi), at the same pace.
  const renewing = setInterval(() => {
    void slots?.renew().then(
      (kept) => {
        if (!kept) log.warn(`the GPU slot on ${gpuKey} lapsed during a training (a Redis outage?) and another worker holds it: two trainings may share the GPU`);
      },
      (e: Error) => log.debug(`slot not renewed (Redis?): ${e.message}`),
    );
  }, heartbeatMs);
  renewing.unref();

  /** Fetch nothing until a slot of this GPU frees (another worker pinned to it trains). */
  const waitForSlot = () => {
    if (waitingForSlot || closing) return;
    waitingFor = `a free slot on ${gpuKey} (JOBS_PER_GPU=${config.jobsPerGpu})`;
    heartbeat.push();
    waitingForSlot = setInterval(() => {
      void slots!.anyFree().then((free) => {
        if (!free || !waitingForSlot) return;
        clearInterval(waitingForSlot);
        waitingForSlot = null;
        waitingFor = null;
        if (!closing) worker.resume();
      }, () => undefined);
    }, Math.min(1_000, heartbeatMs));
    waitingForSlot.unref();
  };

  const processor = async (job: Job, token?: string, signal?: AbortSignal): Promise<TrainResult> => {
    const parsed = TrainJobData.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`bad job data: ${parsed.error.issues[0]?.message}`);
    const data = parsed.data;
    const id = job.id!;
    if (!runnerMatches({ host, gpuId: config.gpuId ?? null, gpuClass }, data.target)) {
      // A cancel that came while it bounced between runners ends it here.
      const flag = await readCancelFlag(connection, prefix, id);
      if (flag) throw new UnrecoverableError(cancelledLine(flag));
      // Asked for another host or GPU class: back to the queue for a moment (no attempt spent), and on to the next
      // job. It has reached the head of the queue, so from now on it comes first for the runners it fits.
      if (job.priority !== PRIORITY_TARGETED) await job.changePriority({ priority: PRIORITY_TARGETED });
      await job.moveToDelayed(Date.now() + NOT_MINE_DELAY_MS, token);
      throw new DelayedError();
    }
    if (slots && !(await slots.take(id))) {
      // Another worker pinned to this GPU is training on it: this worker stops fetching until a slot frees, and the
      // job goes back to the head of the queue (for any other runner).
      log.info(`job ${id}: ${gpuKey} is busy (${(await slots.holders()).join(', ')}); waiting for it before taking jobs`);
      await worker.pause(true);
      waitForSlot();
      await job.moveToWait(token);
      throw new WaitingError();
    }
    try {
      return await train(job, data, id, signal);
    } finally {
      current = null;
      await slots?.release().catch((e: Error) => log.warn(`could not release the GPU slot (it lapses on its own): ${e.message}`));
      heartbeat.push();
    }
  };

  /** A model trained on this host's own disk, copied to the shared folder (checksummed) before latest moves there. */
  const publish = async (id: string, name: string, moveLatest: boolean): Promise<string> => {
    try {
      const done = await publishModel({ localDir: config.localModelsDir!, sharedDir: config.modelsDir, name, moveLatest });
      log.info(`job ${id}: ${done.files} files (${(done.bytes / 1e6).toFixed(1)} MB) copied to the shared models folder as ${done.name}, checksums verified`);
      return done.name;
    } catch (e) {
      // a checksum that differs (PublishFailed), or the shared folder full or gone: the model stays where it trained
      if (!(e instanceof PublishFailed)) log.warn(`job ${id}: copying ${name} to ${config.modelsDir} failed`, e);
      throw new UnrecoverableError(`the model trained but could not be copied to the shared models folder (${(e as Error).message.split('\n')[0]}); it is kept on ${host} in ${join(config.localModelsDir!, name)}`);
    }
  };

  const train = async (job: Job, data: TrainJobData, id: string, signal?: AbortSignal): Promise<TrainResult> => {
    // An earlier attempt that got as far as a model folder (its runner died or shut down): continue that folder.
    const parsed = TrainProgress.safeParse(job.progress);
    const earlier = parsed.success ? parsed.data : undefined;
    const resume = earlier?.modelName;
    // a resumed run's time and pace count its earlier attempts: the done line says how long the whole run took
    const runStartedAt = earlier?.startedAt ?? Date.now();
    const progress: TrainProgress = {
      phase: 'starting', step: earlier?.step ?? 0, maxSteps: earlier?.maxSteps ?? 0,
      loss: null, elapsedS: 0, notices: earlier?.notices ?? [], runner: name, startedAt: runStartedAt,
      ...(resume ? { modelName: resume, resumedFrom: earlier!.step } : {}),
      ...(earlier ? { timed: timedSteps(earlier) } : {}),
    };
    // A cancel that raced the pickup, or came while no runner held the job (its runner had died): it ends here, before
    // the channel is told of a start or a resume, and an earlier attempt's folder is marked as a cancel leaves it.
    const flag = await readCancelFlag(connection, prefix, id);
    if (flag) {
      if (resume) await markFolder(trainingDir(config), resume, 'cancelled', cancelledLine(flag)).catch((e: unknown) => log.warn('could not mark the folder', e));
      throw new UnrecoverableError(cancelledLine(flag));
    }
    await job.updateProgress(progress);
    const readOnly = await unwritable(trainingDir(config), name, config.localModelsDir ? 'LOCAL_MODELS_DIR' : 'MODELS_DIR');
    if (readOnly) throw new UnrecoverableError(readOnly);
    const free = await freeBytes(trainingDir(config));
    if (free < config.minFreeDiskGb * 1e9) {
      throw new UnrecoverableError(
        `only ${(free / 1e9).toFixed(1)} GB free for models on ${name} (MIN_FREE_DISK_GB=${config.minFreeDiskGb}): free some space (/models list shows what is there), then /train again`,
      );
    }

    let losses: (number | null)[] = [];
    const stop = new AbortController();
    // A user's cancel stops the run for good; the runner going away (shutdown) interrupts it, to be resumed.
    signal?.addEventListener('abort', () => stop.abort(signal.reason === 'cancelled' ? 'cancelled' : INTERRUPT), { once: true });
    // aborted while it was being picked up (the runner began to shut down): an aborted signal fires no listener
    if (signal?.aborted) throw new Error(`${SHUTDOWN} (${name}, before the trainer started)`);
    current = { id, profile: data.profile, step: progress.step, maxSteps: progress.maxSteps, requestedBy: data.requestedBy.name };
    heartbeat.push();
    const report = latestOnly(async () => {
      current = { ...current!, step: progress.step, maxSteps: progress.maxSteps };
      await job.updateProgress({ ...progress, notices: [...progress.notices] });
      if (!stop.signal.aborted && (await readCancelFlag(connection, prefix, id))) stop.abort('cancelled');
    });
    await gpu.startTraining(id);
    if (earlier) progress.earlierS = Math.max(0, (Date.now() - runStartedAt) / 1000);
    log.info(`job ${id}: ${data.profile} for ${data.requestedBy.name}${resume ? `, resuming ${resume}` : ''}`);
    onJobStart?.(id);
    try {
      const done = await runTrainer({
        python: config.python,
        script: TRAINER_SCRIPT,
        args: trainerArgs(config, data, id, resume),
        cwd: REPO_ROOT,
        // GPU ids count as nvidia-smi counts them (PCI order), so the trainer uses the GPU the heartbeat reports
        env: { TRAINER_LOAD_IN_4BIT: config.trainerLoadIn4bit ? '1' : '0', CUDA_DEVICE_ORDER: 'PCI_BUS_ID' },
        signal: stop.signal,
        killGraceMs: config.trainerKillGraceMs,
        stallTimeoutMs: config.trainerStallTimeoutS * 1000,
        onMessage: (m) => {
          if (m.type === 'start') {
            Object.assign(progress, { modelName: m.model_name, maxSteps: m.max_steps, datasetExamples: m.dataset_examples });
            if (m.resumed_from_step !== null) progress.resumedFrom = m.resumed_from_step;
          } else if (m.type === 'notice') {
            if (!progress.notices.includes(m.message)) progress.notices.push(m.message);
          } else if (m.type === 'step') {
            progress.firstStep ??= { step: m.step, elapsedS: m.elapsed_s };
            losses.push(m.loss);
            Object.assign(progress, { phase: 'training', step: m.step, maxSteps: m.max_steps, loss: m.loss, elapsedS: m.elapsed_s });
          } else return;
          report.push();
        },
      });
      await report.flush();
      log.info(`job ${id}: done, ${done.model_name}, final loss ${done.final_loss}`);
      // The whole run's losses (a resumed run logged only its own part): the trainer wrote them beside the adapter.
      const history = await new ModelRegistry(trainingDir(config)).losses(done.model_name);
      const whole = history.length > 0 && history.length >= losses.length;
      if (whole) losses = history;
      const modelName = config.localModelsDir ? await publish(id, done.model_name, done.latest) : done.model_name;
      return {
        modelName,
        losses,
        firstStep: whole ? 1 : (progress.firstStep?.step ?? 1),
        finalLoss: done.final_loss,
        band: done.band,
        evalLoss: done.eval_loss,
        evalBand: done.eval_band,
        steps: done.steps,
        // a resumed run: the wall time since its first attempt started, the time between the attempts included (never
        // less than this attempt's own, should the first attempt's host clock run ahead of this one's)
        durationS: earlier ? Math.max(done.duration_s, (Date.now() - runStartedAt) / 1000) : done.duration_s,
        latest: done.latest,
      };
    } catch (e) {
      await report.flush();
      if (!(e instanceof TrainerFailed)) throw e;
      log.warn(`job ${id}: ${e.kind}: ${e.message}`);
      if (e.kind === 'cancelled') {
        const by = await readCancelFlag(connection, prefix, id);
        if (by) throw new UnrecoverableError(cancelledLine({ ...by, step: progress.step }, true));
      }
      if (e.kind === 'cancelled' || e.kind === 'interrupted') {
        // Nobody cancelled it: this runner is going away. A plain error lets BullMQ give the job another try, which
        // resumes the folder from its newest checkpoint.
        throw new Error(`${SHUTDOWN} (${name}, at step ${progress.step})`);
      }
      // The trainer could not say it failed (killed by the watchdog or the kernel): the runner marks its folder.
      if (!e.reported && progress.modelName) await markFolder(trainingDir(config), progress.modelName, 'failed', e.message).catch((m) => log.warn('could not mark the folder', m));
      // A trainer failure repeats on a retry (bad data, out of memory): fail now, with its one line.
      throw new UnrecoverableError(e.message);
    } finally {
      gpu.endTraining();
    }
  };

  const worker = new Worker(TRAIN_QUEUE, processor, {
    connection,
    prefix,
    concurrency: 1,
    autorun: false,
    // A runner that dies keeps its job's lock until it lapses; then any runner's stalled check puts the job back
    // to be taken again (and resumed). Twice at most: a job that takes its runners down every time then fails.
    lockDuration: config.jobLockMs,
    stalledInterval: stalledInterval ?? stalledCheckMs(config),
    maxStalledCount: 2,
  });
  worker.on('error', connectionErrorOr((e) => log.error('worker error', e)));

  // Asks: the resident inference worker (started by the first ask), one answer at a time, streamed as job progress.
  const inference = new InferenceProcess(config);
  /** Who has the GPU: the policy of INFERENCE_DURING_TRAINING, applied when a training starts and ends. */
  const gpu = {
    training: null as string | null,
    async startTraining(jobId: string) {
      this.training = jobId;
      if (config.inferenceDuringTraining !== 'wait') return;
      await askWorker.pause(); // lets the answer in progress finish
      await inference.stop(); // frees the GPU memory the model held
      log.info(`asks wait while job ${jobId} trains`);
    },
    endTraining() {
      this.training = null;
      if (config.inferenceDuringTraining === 'wait') askWorker.resume();
    },
  };
  const STREAM_UPDATE_MS = 100;
  const askWorker = new Worker(
    ASK_QUEUE,
    async (job: Job): Promise<AskResult> => {
      const parsed = AskJobData.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError(`bad ask: ${parsed.error.issues[0]?.message}`);
      if (gpu.training && config.inferenceDuringTraining === 'refuse') {
        throw new UnrecoverableError(`the ${device.device?.kind === 'cpu' ? 'CPU' : 'GPU'} is training job ${gpu.training}; asks are refused until it ends (INFERENCE_DURING_TRAINING=refuse)`);
      }
      let text = '';
      let sentAt = 0;
      try {
        const done = await inference.ask({ model: parsed.data.model, messages: parsed.data.messages, reasoning_effort: parsed.data.reasoningEffort }, (piece) => {
          text += piece;
          if (Date.now() - sentAt >= STREAM_UPDATE_MS) {
            sentAt = Date.now();
            void job.updateProgress({ text }).catch(() => undefined);
          }
        });
        return { model: done.model, answer: done.answer, reasoning: done.reasoning, complete: done.complete, tokens: done.tokens, ttftS: done.ttft_s, durationS: done.duration_s };
      } catch (e) {
        if (e instanceof AskRefused) throw new UnrecoverableError(e.message);
        throw e; // the worker died: BullMQ tries again, and the next ask starts a new worker
      }
    },
    { connection, prefix, concurrency: 1, autorun: false, stalledInterval: stalledInterval ?? stalledCheckMs(config) },
  );
  askWorker.on('error', connectionErrorOr((e) => log.error('ask worker error', e)));

  const subscriber = duplicateRedis(connection);
  await subscriber.subscribe(keys.cancelChannel(prefix));
  subscriber.on('message', (_channel, jobId: string) => {
    if (worker.cancelJob(jobId, 'cancelled')) log.info(`job ${jobId}: cancel requested`);
  });

  void worker.run();
  void askWorker.run();
  await Promise.all([worker.waitUntilReady(), askWorker.waitUntilReady()]);
  log.info(`runner ${name} is taking training jobs (backend ${config.trainerBackend}, class ${gpuClass}${gpuKey ? `, ${config.jobsPerGpu} at a time on ${gpuKey}` : ''})`);
  return {
    worker,
    askWorker,
    inference,
    name,
    async close() {
      closing = true;
      clearInterval(beating);
      clearInterval(renewing);
      if (waitingForSlot) clearInterval(waitingForSlot);
      worker.cancelAllJobs(SHUTDOWN);
      await Promise.all([worker.close(), askWorker.close()]);
      await inference.stop();
      await closeRedis(subscriber);
      await heartbeat.flush();
      // stopped on purpose: off the list, not "silent"
      await registry.leave(name, instance).catch((e: Error) => log.warn(`could not leave the runner list: ${e.message}`));
    },
  };
}
