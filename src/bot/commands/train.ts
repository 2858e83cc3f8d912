/** /train <profile> [r] [scheduler] queues a LoRA run; /train status [job] and /train cancel <job> follow it up. */
import { defineCommand, type CommandContext, type Handler, type OptionSpec } from '../command-kit.ts';
import type { MessageRef } from '../surface.ts';
import { InvalidInput, UserError } from '../../shared/errors.ts';
import { jobHeader, jobStatus, queuedLine } from '../format.ts';
import { cancelledLine, type CancelFlag, type TrainJobData } from '../../shared/jobs.ts';
import type { JobView } from '../queue.ts';
import { GPU_CLASS_RE, HOST_NAME_RE, runnerMatches } from '../../shared/runner-registry.ts';
import { PROFILES, PROFILE_NAMES, RANK, SCHEDULERS } from '../../shared/tables.ts';

const overrides: OptionSpec[] = [
  {
    name: 'r',
    description: `LoRA rank, ${RANK.min}-${RANK.max} (default: the profile's)`,
    type: 'integer',
    min: RANK.min,
    max: RANK.max,
  },
  { name: 'scheduler', description: 'learning-rate schedule', type: 'string', choices: SCHEDULERS },
  {
    name: 'host',
    description: 'run only on this runner host (or one GPU of it: host/gpu1); /runners lists them',
    type: 'string',
    named: true,
  },
  {
    name: 'gpu',
    description: 'run only on this GPU class (h100, a100…); /runners lists them',
    type: 'string',
    named: true,
  },
];

/** A runner's host name, or `host/gpuN`: checked before any lookup, never echoed raw. */
const isHostTarget = (v: string) => {
  const [host, gpu, ...rest] = v.split('/');
  return rest.length === 0 && HOST_NAME_RE.test(host!) && (gpu === undefined || /^gpu\d{1,3}$/.test(gpu));
};

/**
 * Where a job asked to run, checked against the runners Redis knows (live or silent): a job no runner could ever take
 * would wait forever. `live`: whether one of them is alive now.
 */
async function targetOf(
  ctx: CommandContext,
  args: Record<string, unknown>,
): Promise<{ target?: TrainJobData['target']; live: boolean }> {
  const host = args.host as string | undefined;
  const gpu = args.gpu as string | undefined;
  if (host === undefined && gpu === undefined) return { live: true };
  if (host !== undefined && !isHostTarget(host))
    throw new InvalidInput('host must be a runner name as /runners shows it (box, or box/gpu1)');
  if (gpu !== undefined && !GPU_CLASS_RE.test(gpu))
    throw new InvalidInput('gpu must be a GPU class as /runners shows it (h100, a100, cpu…)');
  const target = { ...(host !== undefined && { host }), ...(gpu !== undefined && { gpu: gpu.toLowerCase() }) };
  const matching = (await ctx.bot.runners.list()).filter((r) => runnerMatches(r, target));
  if (matching.length === 0) {
    throw new UserError(
      `no runner is ${[host && `on host ${host}`, gpu && `of GPU class ${gpu}`].filter(Boolean).join(' and ')}; /runners lists the runners and their classes`,
    );
  }
  return { target, live: matching.some((r) => r.live) };
}
const jobOption = (required: boolean): OptionSpec => ({
  name: 'job',
  description: 'the job id from the job card',
  type: 'string',
  required,
});

/** A job id is the number on its card: anything else is refused here, before Redis is asked, and not echoed back. */
function jobId(value: unknown): string {
  const id = String(value);
  if (!/^\d{1,15}$/.test(id)) throw new InvalidInput('job must be the number on a job card; /queue lists the jobs');
  return id;
}

/** The same person: the same id on the same platform (ids of two platforms may collide). */
const isRequester = (data: TrainJobData, ctx: CommandContext) =>
  data.requestedBy.id === ctx.user.id && data.requestedBy.platform === ctx.user.platform;

async function queueTraining(profile: string, ctx: CommandContext, args: Record<string, unknown>): Promise<void> {
  const { queue, watcher } = ctx.bot;
  const { target, live } = await targetOf(ctx, args);
  const data: TrainJobData = {
    profile,
    ...(args.r !== undefined && { r: args.r as number }),
    ...(args.scheduler !== undefined && { scheduler: args.scheduler as string }),
    requestedBy: { id: ctx.user.id, name: ctx.user.name, platform: ctx.surface.platform },
    origin: { platform: ctx.surface.platform, channelId: ctx.channelId },
    ...(target && { target }),
  };
  const max = ctx.bot.config.maxQueuedPerUser;
  // Count and add under the user's lock: unlocked, two /train at the same moment (from one bot process or two) would
  // both count the same jobs, both see room, and both queue.
  const { job, position, running } = await queue.withUserLock(ctx.user, async () => {
    const pending = (await queue.pendingOf(ctx.user)).length;
    if (pending >= max)
      throw new UserError(
        `you have ${pending} training${pending === 1 ? '' : 's'} waiting or running (the limit is ${max}); /train status lists them`,
      );
    return queue.add(data);
  });
  const status = `${queuedLine(job.id!, position, running)}${live ? '' : ' · ⚠️ every runner it may run on is silent: it waits for one to come back'}`;
  // one message per job: this header, and under it a status line that keeps itself up to date
  let ref: MessageRef;
  try {
    ref = await ctx.reply(`${jobHeader(job.id!, data)}\n${status}`);
  } catch (e) {
    // no message, no job: a run nobody can follow or cancel from the channel must not start
    await queue.cancel(job.id!, ctx.user.name).catch(() => undefined);
    throw e;
  }
  // the message id lives with the job, so a restarted bot edits the same message
  await watcher.remember(job, ref);
  void watcher.follow(job.id!, ctx.surface, ref, { data, status, intervalMs: ctx.bot.config.progressEditIntervalMs });
}

const profiles: Handler[] = PROFILE_NAMES.map((name) => {
  const p = PROFILES[name]!;
  return {
    name,
    group: 'profile',
    permission: 'train',
    description: `${p.steps} steps, ${p.dataset_examples} examples: ${p.use}`,
    options: overrides,
    run: (ctx, args) => queueTraining(name, ctx, args),
  };
});

const status: Handler = {
  name: 'status',
  private: true,
  description: "a job's progress (default: your jobs that are waiting or running)",
  options: [jobOption(false)],
  async run(ctx, args) {
    if (args.job !== undefined) {
      await ctx.replyPrivate(jobStatus(await ctx.bot.queue.view(jobId(args.job))));
      return;
    }
    const mine = await ctx.bot.queue.pendingOf(ctx.user);
    await ctx.replyPrivate(
      mine.length ? mine.map(jobStatus).join('\n') : 'You have no jobs waiting or running; /queue shows everyone’s.',
    );
  },
};

/** A run that a runner had begun and none will finish: its folder says cancelled, as a runner's cancel leaves it. */
async function markCancelled(ctx: CommandContext, view: JobView, flag: CancelFlag): Promise<void> {
  const folder = view.progress?.modelName;
  if (folder) await ctx.bot.models.markEnded(folder, 'cancelled', cancelledLine(flag, true)).catch(() => undefined);
}

const cancel: Handler = {
  name: 'cancel',
  private: true,
  description: 'stop a job, waiting or running; latest stays where it was',
  options: [jobOption(true)],
  async run(ctx, args) {
    const id = jobId(args.job);
    const view = await ctx.bot.queue.view(id);
    if (view.state !== 'waiting' && view.state !== 'active')
      throw new InvalidInput(`job ${id} has already ${view.state === 'completed' ? 'finished' : view.state}`);
    if (!isRequester(view.data, ctx) && !ctx.bot.access.allows('cancel_any', ctx.user, ctx.channelId)) {
      throw new UserError(
        `job ${id} belongs to ${view.data.requestedBy.name}; only they (or ALLOW_CANCEL_ANY) can cancel it`,
      );
    }
    const earlier = await ctx.bot.queue.cancelFlag(id);
    if (earlier)
      throw new InvalidInput(
        `job ${id} is already stopping (${earlier.by} cancelled it); its message shows when it has`,
      );
    const { queue, config } = ctx.bot;
    const { how, flag } = await queue.cancel(id, ctx.user.name);
    if (how === 'signalled') {
      await ctx.replyPrivate(`🛑 stopping job ${id}…`);
      // A runner that died holds the job until its lock lapses: then it ends here, whether or not a runner comes back.
      void queue.settleCancel(id, flag, config.jobLockMs + 10_000).then(
        (ended) => (ended ? markCancelled(ctx, view, flag) : undefined),
        () => undefined,
      );
      return;
    }
    await markCancelled(ctx, view, flag);
    // to the one who cancelled: the channel's line without their own name
    await ctx.replyPrivate(
      `🛑 job ${id} ${cancelledLine(flag, how === 'ended').replace(/^cancelled by .+? (at step|before)/, 'cancelled $1')}${how === 'ended' ? ' (no runner was running it)' : ''}`,
    );
  },
};

export default defineCommand({
  name: 'train',
  description: 'Fine-tune a LoRA adapter of gpt-oss, or check on and cancel a run',
  subcommandLabel: 'profile',
  uses: ['files'],
  subcommands: [...profiles, status, cancel],
});
