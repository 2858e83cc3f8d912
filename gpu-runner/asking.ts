/**
 * Asks on a runner: the resident inference worker (started by the first ask) answers one at a time, streamed as the
 * ask job's progress; and who has the GPU while a training runs (INFERENCE_DURING_TRAINING).
 */
import { UnrecoverableError, type Job, type Worker } from 'bullmq';
import type { Config } from '../src/shared/config.ts';
import { AskJobData, type AskResult } from '../src/shared/jobs.ts';
import { logger } from '../src/shared/log.ts';
import { AskRefused, type InferenceProcess } from './inference-process.ts';

const log = logger('runner');
/** The least time between two progress updates of a streaming answer (ms). */
const STREAM_UPDATE_MS = 100;

/** Who has the GPU: the policy of INFERENCE_DURING_TRAINING, applied when a training starts and ends. */
export class GpuTurns {
  /** The job training now, or null. */
  training: string | null = null;

  constructor(
    private readonly config: Config,
    private readonly inference: InferenceProcess,
    /** The ask worker, paused while a training has the GPU (policy `wait`). */
    private readonly asks: () => Worker,
  ) {}

  async startTraining(jobId: string): Promise<void> {
    this.training = jobId;
    if (this.config.inferenceDuringTraining !== 'wait') return;
    await this.asks().pause(); // lets the answer in progress finish
    await this.inference.stop(); // frees the GPU memory the model held
    log.info(`asks wait while job ${jobId} trains`);
  }

  endTraining(): void {
    this.training = null;
    if (this.config.inferenceDuringTraining === 'wait') this.asks().resume();
  }
}

/** The ask worker's processor: one answer from the inference worker, its text sent as progress while it grows. */
export async function answerAsk(
  config: Config,
  inference: InferenceProcess,
  turns: GpuTurns,
  device: 'CPU' | 'GPU',
  job: Job,
): Promise<AskResult> {
  const parsed = AskJobData.safeParse(job.data);
  if (!parsed.success) throw new UnrecoverableError(`bad ask: ${parsed.error.issues[0]?.message}`);
  if (turns.training && config.inferenceDuringTraining === 'refuse') {
    throw new UnrecoverableError(
      `the ${device} is training job ${turns.training}; asks are refused until it ends (INFERENCE_DURING_TRAINING=refuse)`,
    );
  }
  let text = '';
  let sentAt = 0;
  try {
    const { model, messages, reasoningEffort } = parsed.data;
    const done = await inference.ask({ model, messages, reasoning_effort: reasoningEffort }, (piece) => {
      text += piece;
      if (Date.now() - sentAt >= STREAM_UPDATE_MS) {
        sentAt = Date.now();
        void job.updateProgress({ text }).catch(() => undefined);
      }
    });
    return {
      model: done.model,
      answer: done.answer,
      reasoning: done.reasoning,
      complete: done.complete,
      tokens: done.tokens,
      ttftS: done.ttft_s,
      durationS: done.duration_s,
    };
  } catch (e) {
    if (e instanceof AskRefused) throw new UnrecoverableError(e.message);
    throw e; // the worker died: BullMQ tries again, and the next ask starts a new worker
  }
}
