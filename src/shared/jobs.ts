/** What travels through the queue: a training job's data, its progress and its result, each checked with zod. */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { PROFILE_NAMES, RANK, SCHEDULERS } from './tables.ts';

export const TRAIN_QUEUE = 'train';
/**
 * BullMQ priorities of training jobs (1 is taken first): every job is queued at PRIORITY_ANY, in order; a job that
 * asked for a host or GPU class is raised to PRIORITY_TARGETED when a runner it does not fit hands it back from the
 * head of the queue, so it keeps its place for the runners it fits while the others take the jobs behind it.
 */
export const PRIORITY_TARGETED = 1;
export const PRIORITY_ANY = 2;

export const Requester = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  platform: z.string().min(1),
});
export type Requester = z.infer<typeof Requester>;

export const TrainJobData = z.object({
  profile: z.enum(PROFILE_NAMES as [string, ...string[]]),
  r: z.number().int().min(RANK.min).max(RANK.max).optional(),
  scheduler: z.enum(SCHEDULERS as [string, ...string[]]).optional(),
  requestedBy: Requester,
  /** Where the job was asked for, so a progress message can be found again. */
  origin: z.object({ platform: z.string(), channelId: z.string(), messageId: z.string().optional() }),
  /** The runners it may run on: a host (or one worker, `host/gpu1`) and/or a GPU class (`h100`); unset: any. */
  target: z.object({ host: z.string().optional(), gpu: z.string().optional() }).optional(),
});
export type TrainJobData = z.infer<typeof TrainJobData>;

export const TrainProgress = z.object({
  phase: z.enum(['starting', 'training']),
  step: z.number().int().nonnegative(),
  maxSteps: z.number().int().nonnegative(),
  loss: z.number().nullable(),
  elapsedS: z.number().nonnegative(),
  /** The first step this run logged and when: the pace (and so the ETA) is measured from there. */
  firstStep: z.object({ step: z.number().int(), elapsedS: z.number() }).optional(),
  /** Seconds of the run before this attempt's trainer started (earlier attempts and the time between them). */
  earlierS: z.number().nonnegative().optional(),
  /** Steps and seconds that earlier attempts measured, from their first step: the pace of a resumed run uses them. */
  timed: z.object({ steps: z.number().int().nonnegative(), seconds: z.number().nonnegative() }).optional(),
  /** When the first attempt started (ms since the epoch, that runner's clock). */
  startedAt: z.number().optional(),
  /** Set when this attempt continues an earlier one's folder: the checkpoint step it resumed from. */
  resumedFrom: z.number().int().nonnegative().optional(),
  modelName: z.string().optional(),
  datasetExamples: z.number().int().optional(),
  notices: z.array(z.string()).default([]),
  runner: z.string().optional(),
});
export type TrainProgress = z.infer<typeof TrainProgress>;

/** The steps and seconds a run has measured so far, over its attempts, from each attempt's first step. */
export function timedSteps(p: TrainProgress): { steps: number; seconds: number } {
  const here =
    p.firstStep && p.step > p.firstStep.step
      ? { steps: p.step - p.firstStep.step, seconds: p.elapsedS - p.firstStep.elapsedS }
      : { steps: 0, seconds: 0 };
  return { steps: (p.timed?.steps ?? 0) + here.steps, seconds: (p.timed?.seconds ?? 0) + here.seconds };
}

export const TrainResult = z.object({
  modelName: z.string(),
  /** Every logged step loss, in order, from `firstStep` (null where it was not finite): the loss curve. */
  losses: z.array(z.number().nullable()).default([]),
  firstStep: z.number().int().default(1),
  finalLoss: z.number().nullable(),
  band: z.string(),
  /** The loss on the conversations held out from training, and its band; null when none were held out. */
  evalLoss: z.number().nullable().default(null),
  evalBand: z.string().nullable().default(null),
  steps: z.number().int(),
  durationS: z.number(),
  latest: z.boolean(),
});
export type TrainResult = z.infer<typeof TrainResult>;

export const ASK_QUEUE = 'ask';
export const REASONING_EFFORTS = ['low', 'medium', 'high'] as const;
export const MAX_PROMPT_CHARS = 4_000;

export const AskJobData = z.object({
  /** `latest`, `base` or a model folder name. */
  model: z.string().min(1),
  messages: z.array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() })).min(1),
  reasoningEffort: z.enum(REASONING_EFFORTS),
  requestedBy: Requester,
  origin: z.object({ platform: z.string(), channelId: z.string(), messageId: z.string().optional() }),
  /** The answer message's first line; stored with the message id so a restarted bot can finish the message. */
  header: z.string().optional(),
  /** A /chat turn: where the exchange is stored once answered (by whichever bot process sees the answer). */
  chat: z.object({ threadId: z.string(), question: z.string() }).optional(),
});
export type AskJobData = z.infer<typeof AskJobData>;

/** The answer so far (Harmony's final channel), as it streams. */
export const AskProgress = z.object({ text: z.string() });

export const AskResult = z.object({
  model: z.string(),
  answer: z.string(),
  reasoning: z.string(),
  complete: z.boolean(),
  tokens: z.number().int(),
  ttftS: z.number(),
  durationS: z.number(),
});
export type AskResult = z.infer<typeof AskResult>;

/** A cancel, stored with the job's id: who, when, and the step the run had reached (0: it had not started). */
export const CancelFlag = z.object({
  by: z.string(),
  at: z.string(),
  profile: z.string(),
  step: z.number().int().nonnegative().default(0),
});
export type CancelFlag = z.infer<typeof CancelFlag>;

/**
 * How a cancel reads in the channel: at the step the run had reached, before its first step (`started`: a runner had
 * taken it), or before it started.
 */
export const cancelledLine = (flag: CancelFlag, started = false) =>
  `cancelled by ${flag.by} ${flag.step > 0 ? `at step ${flag.step}` : started ? 'before its first step' : 'before it started'}`;

export async function readCancelFlag(
  redis: Pick<Redis, 'get'>,
  prefix: string,
  jobId: string,
): Promise<CancelFlag | null> {
  const raw = await redis.get(keys.cancelFlag(prefix, jobId));
  if (!raw) return null;
  const flag = CancelFlag.safeParse(parseJsonOrNull(raw));
  return flag.success ? flag.data : { by: 'someone', at: '', profile: '', step: 0 };
}

/** JSON.parse, or null for text that is not JSON. */
export function parseJsonOrNull(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}

/** Redis names shared by the bot and the runners (under the queue prefix). */
export const keys = {
  cancelChannel: (prefix: string) => `${prefix}:train:cancel`,
  cancelFlag: (prefix: string, jobId: string) => `${prefix}:train:cancelled:${jobId}`,
};
export const CANCEL_FLAG_TTL_S = 7 * 24 * 3600;
