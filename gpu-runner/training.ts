/**
 * A training job on a runner, from pickup to result: is it for this runner, is its GPU free, can the models folder
 * take it; then the trainer as a child process, its messages as the job's progress, and the model published. A cancel
 * (the job's flag, read at pickup and at every step) ends it for good; the runner going away interrupts it, and the
 * next attempt resumes its folder from the newest checkpoint.
 */
import { DelayedError, UnrecoverableError, WaitingError, type Job, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { constants } from 'node:fs';
import { access, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT, type Config } from '../src/shared/config.ts';
import {
  cancelledLine,
  PRIORITY_TARGETED,
  readCancelFlag,
  timedSteps,
  TrainJobData,
  TrainProgress,
  type TrainResult,
} from '../src/shared/jobs.ts';
import { logger } from '../src/shared/log.ts';
import { markFolder, ModelRegistry } from '../src/shared/model-registry.ts';
import { runnerMatches } from '../src/shared/runner-registry.ts';
import type { GpuTurns } from './asking.ts';
import type { GpuSlots } from './gpu-slots.ts';
import { latestOnly } from './latest-only.ts';
import type { Presence } from './presence.ts';
import { PublishFailed, publishModel } from './publish.ts';
import { INTERRUPT, runTrainer, TrainerFailed } from './trainer-process.ts';

const log = logger('runner');
export const TRAINER_SCRIPT = join(REPO_ROOT, 'gpu-runner/trainer/train.py');
export const SHUTDOWN = 'the runner is shutting down';
/** A job for another host or GPU class goes back for this long, while this worker takes the next one. */
const NOT_MINE_DELAY_MS = 2_000;

/** What a training job needs of its runner. */
export interface TrainingDeps {
  config: Config;
  connection: Redis;
  presence: Presence;
  /** This GPU's training slots (JOBS_PER_GPU), shared by the workers pinned to it; null without a GPU to share. */
  slots: GpuSlots | null;
  slotWait: SlotWait | null;
  turns: GpuTurns;
  /** Called when a job has been taken and its trainer is about to start (metrics, benchmarks). */
  onJobStart?: (jobId: string) => void;
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

/** The training worker's processor: a job taken from the queue, trained here or handed back. */
export async function processTrainJob(
  deps: TrainingDeps,
  job: Job,
  token?: string,
  signal?: AbortSignal,
): Promise<TrainResult> {
  const { connection, presence, slots } = deps;
  const parsed = TrainJobData.safeParse(job.data);
  if (!parsed.success) throw new UnrecoverableError(`bad job data: ${parsed.error.issues[0]?.message}`);
  const data = parsed.data;
  const id = job.id!;
  if (!runnerMatches(presence.where, data.target)) {
    // A cancel that came while it bounced between runners ends it here.
    const flag = await readCancelFlag(connection, deps.config.queuePrefix, id);
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
    log.info(
      `job ${id}: ${presence.gpuKey} is busy (${(await slots.holders()).join(', ')}); waiting for it before taking jobs`,
    );
    await deps.slotWait!.begin();
    await job.moveToWait(token);
    throw new WaitingError();
  }
  try {
    return await train(deps, job, data, id, signal);
  } finally {
    presence.current = null;
    await slots
      ?.release()
      .catch((e: Error) => log.warn(`could not release the GPU slot (it lapses on its own): ${e.message}`));
    presence.push();
  }
}

async function train(
  deps: TrainingDeps,
  job: Job,
  data: TrainJobData,
  id: string,
  signal?: AbortSignal,
): Promise<TrainResult> {
  const { config, connection, presence, turns } = deps;
  const prefix = config.queuePrefix;
  // An earlier attempt that got as far as a model folder (its runner died or shut down): continue that folder.
  const parsed = TrainProgress.safeParse(job.progress);
  const earlier = parsed.success ? parsed.data : undefined;
  const resume = earlier?.modelName;
  // a resumed run's time and pace count its earlier attempts: the done line says how long the whole run took
  const runStartedAt = earlier?.startedAt ?? Date.now();
  const progress: TrainProgress = {
    phase: 'starting',
    step: earlier?.step ?? 0,
    maxSteps: earlier?.maxSteps ?? 0,
    loss: null,
    elapsedS: 0,
    notices: earlier?.notices ?? [],
    runner: presence.name,
    startedAt: runStartedAt,
    ...(resume ? { modelName: resume, resumedFrom: earlier!.step } : {}),
    ...(earlier ? { timed: timedSteps(earlier) } : {}),
  };
  // A cancel that raced the pickup, or came while no runner held the job (its runner had died): it ends here, before
  // the channel is told of a start or a resume, and an earlier attempt's folder is marked as a cancel leaves it.
  const flag = await readCancelFlag(connection, prefix, id);
  if (flag) {
    if (resume)
      await markFolder(trainingDir(config), resume, 'cancelled', cancelledLine(flag)).catch((e: unknown) =>
        log.warn('could not mark the folder', e),
      );
    throw new UnrecoverableError(cancelledLine(flag));
  }
  await job.updateProgress(progress);
  await checkDisk(config, presence.name);

  let losses: (number | null)[] = [];
  const stop = new AbortController();
  // A user's cancel stops the run for good; the runner going away (shutdown) interrupts it, to be resumed.
  signal?.addEventListener('abort', () => stop.abort(signal.reason === 'cancelled' ? 'cancelled' : INTERRUPT), {
    once: true,
  });
  // aborted while it was being picked up (the runner began to shut down): an aborted signal fires no listener
  if (signal?.aborted) throw new Error(`${SHUTDOWN} (${presence.name}, before the trainer started)`);
  presence.current = {
    id,
    profile: data.profile,
    step: progress.step,
    maxSteps: progress.maxSteps,
    requestedBy: data.requestedBy.name,
  };
  presence.push();
  const report = latestOnly(async () => {
    presence.current = { ...presence.current!, step: progress.step, maxSteps: progress.maxSteps };
    await job.updateProgress({ ...progress, notices: [...progress.notices] });
    if (!stop.signal.aborted && (await readCancelFlag(connection, prefix, id))) stop.abort('cancelled');
  });
  await turns.startTraining(id);
  if (earlier) progress.earlierS = Math.max(0, (Date.now() - runStartedAt) / 1000);
  log.info(`job ${id}: ${data.profile} for ${data.requestedBy.name}${resume ? `, resuming ${resume}` : ''}`);
  deps.onJobStart?.(id);
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
          Object.assign(progress, {
            modelName: m.model_name,
            maxSteps: m.max_steps,
            datasetExamples: m.dataset_examples,
          });
          if (m.resumed_from_step !== null) progress.resumedFrom = m.resumed_from_step;
        } else if (m.type === 'notice') {
          if (!progress.notices.includes(m.message)) progress.notices.push(m.message);
        } else if (m.type === 'step') {
          progress.firstStep ??= { step: m.step, elapsedS: m.elapsed_s };
          losses.push(m.loss);
          Object.assign(progress, {
            phase: 'training',
            step: m.step,
            maxSteps: m.max_steps,
            loss: m.loss,
            elapsedS: m.elapsed_s,
          });
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
    const modelName = config.localModelsDir ? await publish(config, id, done.model_name, done.latest) : done.model_name;
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
      throw new Error(`${SHUTDOWN} (${presence.name}, at step ${progress.step})`);
    }
    // The trainer could not say it failed (killed by the watchdog or the kernel): the runner marks its folder.
    if (!e.reported && progress.modelName)
      await markFolder(trainingDir(config), progress.modelName, 'failed', e.message).catch((m) =>
        log.warn('could not mark the folder', m),
      );
    // A trainer failure repeats on a retry (bad data, out of memory): fail now, with its one line.
    throw new UnrecoverableError(e.message);
  } finally {
    turns.endTraining();
  }
}

/** Refuses the job, with its cause and the fix, when the models folder cannot be written or its disk is nearly full. */
async function checkDisk(config: Config, runner: string): Promise<void> {
  const dir = trainingDir(config);
  const readOnly = await unwritable(dir, runner, config.localModelsDir ? 'LOCAL_MODELS_DIR' : 'MODELS_DIR');
  if (readOnly) throw new UnrecoverableError(readOnly);
  const free = await freeBytes(dir);
  if (free < config.minFreeDiskGb * 1e9) {
    throw new UnrecoverableError(
      `only ${(free / 1e9).toFixed(1)} GB free for models on ${runner} (MIN_FREE_DISK_GB=${config.minFreeDiskGb}): free some space (/models list shows what is there), then /train again`,
    );
  }
}

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
      const cause =
        code === 'EROFS'
          ? 'is on a read-only filesystem'
          : code === 'EACCES' || code === 'EPERM'
            ? "is not writable by the runner's user"
            : `cannot be written (${code})`;
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

/** A model trained on this host's own disk, copied to the shared folder (checksummed) before latest moves there. */
async function publish(config: Config, id: string, name: string, moveLatest: boolean): Promise<string> {
  try {
    const done = await publishModel({
      localDir: config.localModelsDir!,
      sharedDir: config.modelsDir,
      name,
      moveLatest,
    });
    log.info(
      `job ${id}: ${done.files} files (${(done.bytes / 1e6).toFixed(1)} MB) copied to the shared models folder as ${done.name}, checksums verified`,
    );
    return done.name;
  } catch (e) {
    // a checksum that differs (PublishFailed), or the shared folder full or gone: the model stays where it trained
    if (!(e instanceof PublishFailed)) log.warn(`job ${id}: copying ${name} to ${config.modelsDir} failed`, e);
    throw new UnrecoverableError(
      `the model trained but could not be copied to the shared models folder (${(e as Error).message.split('\n')[0]}); it is kept on ${config.runnerHost} in ${join(config.localModelsDir!, name)}`,
    );
  }
}

/**
 * A worker that found its GPU busy (another worker pinned to it trains) fetches nothing until a slot frees: paused,
 * with /runners saying what it waits for, and resumed by a poll of the slots.
 */
export class SlotWait {
  private polling: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly config: Config,
    private readonly presence: Presence,
    private readonly slots: GpuSlots,
    private readonly worker: () => Worker,
  ) {}

  async begin(): Promise<void> {
    await this.worker().pause(true);
    if (this.polling || this.closed) return;
    this.presence.waitingFor = `a free slot on ${this.presence.gpuKey} (JOBS_PER_GPU=${this.config.jobsPerGpu})`;
    this.presence.push();
    this.polling = setInterval(
      () => {
        void this.slots.anyFree().then(
          (free) => {
            if (!free || !this.polling) return;
            clearInterval(this.polling);
            this.polling = null;
            this.presence.waitingFor = null;
            if (!this.closed) this.worker().resume();
          },
          () => undefined,
        );
      },
      Math.min(1_000, this.presence.heartbeatMs),
    );
    this.polling.unref();
  }

  close(): void {
    this.closed = true;
    if (this.polling) clearInterval(this.polling);
    this.polling = null;
  }
}
