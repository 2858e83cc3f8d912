/** How the core words things: job cards, progress lines, final lines, model lists. Plain text with light markdown. */
import type { JobView } from './queue.ts';
import type { ModelEntry } from '../shared/model-registry.ts';
import type { RunnerView } from '../shared/runner-registry.ts';
import { timedSteps, type TrainJobData, type TrainProgress, type TrainResult } from '../shared/jobs.ts';
import { bandById, bandFor, PROFILES } from '../shared/tables.ts';

const BAR_WIDTH = 20;
/** Rows of /models list: about 2,000 characters, Discord's message size. */
const MODELS_LISTED = 15;

export function progressBar(step: number, max: number, width = BAR_WIDTH): string {
  const filled = max > 0 ? Math.min(width, Math.round((step / max) * width)) : 0;
  return `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
}

/** 75 → "1:15", 3725 → "1:02:05". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/**
 * A loss for people. training_info.txt keeps four decimals; the exact value from the trainer is cut to the same four
 * first, so the done line and /models show one model's loss alike.
 */
export const lossText = (loss: number | null) =>
  loss === null ? 'n/a' : Number(loss.toFixed(4)).toFixed(loss < 10 ? 3 : 1);

function settings(data: TrainJobData): string {
  const parts = [];
  if (data.r !== undefined) parts.push(`r=${data.r}`);
  if (data.scheduler !== undefined) parts.push(`scheduler=${data.scheduler}`);
  if (data.target?.host !== undefined) parts.push(`host=${data.target.host}`);
  if (data.target?.gpu !== undefined) parts.push(`gpu=${data.target.gpu}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** The first line of a job's message, which stays while the line below it shows progress. */
export function jobHeader(id: string, data: TrainJobData): string {
  const p = PROFILES[data.profile]!;
  return `🧪 Training job **${id}**: **${data.profile}**${settings(data)} · ${p.steps} steps · ${p.dataset_examples} examples · for ${data.requestedBy.name}`;
}

/** Where a job stands in the queue right after it was added (position 0: a runner took it already). */
export function queuedLine(id: string, position: number, running: number): string {
  const where =
    position === 0
      ? '⏳ starting now'
      : position === 1 && running === 0
        ? '🕒 next up'
        : `🕒 position ${position} in the queue${running ? ` (${running} running)` : ''}`;
  return `${where} · /train cancel ${id} to stop it`;
}

export function progressLine(id: string, progress: TrainProgress | null): string {
  if (progress?.phase === 'starting' && progress.resumedFrom !== undefined) {
    return `↩️ job ${id}: resuming on ${progress.runner ?? 'a runner'} (the last runner stopped at step ${progress.step})…`;
  }
  if (!progress || progress.phase === 'starting') {
    return `⏳ job ${id}: starting${progress?.runner ? ` on ${progress.runner}` : ''}…`;
  }
  const { step, maxSteps, loss, elapsedS, earlierS, resumedFrom } = progress;
  // The pace since the first step, over every attempt: model loading before it says nothing about the steps to come,
  // and the first steps after a resume alone would make the ETA jump.
  const timed = timedSteps(progress);
  const pace = timed.steps > 0 ? timed.seconds / timed.steps : null;
  const eta = pace !== null && maxSteps > step ? ` · ETA ${duration(pace * (maxSteps - step))}` : '';
  const band = loss === null ? '' : ` ${bandFor(loss).emoji}`;
  const resumed = resumedFrom !== undefined ? ` · ↩️ resumed from step ${resumedFrom}` : '';
  return `⏳ job ${id} [${progressBar(step, maxSteps)}] ${step}/${maxSteps} · loss ${lossText(loss)}${band} · ${duration((earlierS ?? 0) + elapsedS)} elapsed${eta}${resumed}`;
}

export function finishedLine(id: string, result: TrainResult): string {
  const band = bandById(result.band);
  const latest = result.latest ? ' (now latest)' : ' (not made latest: the loss diverged)';
  const evalBand = result.evalBand ? bandById(result.evalBand) : null;
  const evaluated = evalBand ? ` · eval loss ${lossText(result.evalLoss)} ${evalBand.emoji} ${evalBand.label}` : '';
  return `✅ job ${id} done · final loss ${lossText(result.finalLoss)} ${band.emoji} ${band.label}${evaluated} · ${duration(result.durationS)} · model \`${result.modelName}\`${latest}`;
}

export const noticeLine = (id: string, notice: string) => `ℹ️ job ${id}: ${notice}`;

export function failedLine(id: string, raw: string): string {
  // BullMQ's own words when a job's runners died once too often (maxStalledCount), said so a user can act on it
  const reason = /stalled more than allowable limit/.test(raw)
    ? 'its runners stopped mid-run too often; /train again'
    : raw;
  const cancelled = /^cancelled/.test(reason);
  return `${cancelled ? '🛑' : '❌'} job ${id} ${cancelled ? reason : `failed: ${reason}`}`;
}

export function jobStatus(view: JobView): string {
  const who = `${view.data.profile}${settings(view.data)} for ${view.data.requestedBy.name}`;
  switch (view.state) {
    case 'waiting':
      return `🕒 job ${view.id} waiting: ${who}`;
    case 'active':
      return `${progressLine(view.id, view.progress)} · ${who}`;
    case 'completed':
      return view.result ? finishedLine(view.id, view.result) : `✅ job ${view.id} done`;
    case 'cancelled':
      return `🛑 job ${view.id} cancelled by ${view.cancelledBy}: ${who}`;
    case 'failed':
      return failedLine(view.id, view.failedReason ?? 'unknown reason');
    default:
      return `job ${view.id}: ${view.state}`;
  }
}

const two = (n: number) => String(n).padStart(2, '0');
const localMinute = (d: Date) =>
  `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;

const FACTS_SHOWN_FIRST = [
  'status',
  'quality',
  'final_loss',
  'eval_quality',
  'eval_loss',
  'profile',
  'base_model',
  'lora_r',
  'scheduler',
  'learning_rate',
  'steps',
  'epochs_seen',
  'dataset_examples',
  'dataset_requested',
  'train_examples',
  'eval_examples',
  'adapted_modules',
  'trainable_parameters',
  'requested_by',
  'started_at',
  'finished_at',
  'duration_s',
];

export function modelInfo(model: ModelEntry, bytes: number): string {
  const keys = [
    ...FACTS_SHOWN_FIRST.filter((k) => k in model.info),
    ...Object.keys(model.info).filter((k) => !FACTS_SHOWN_FIRST.includes(k)),
  ];
  const size = bytes >= 1024 ** 2 ? `${(bytes / 1024 ** 2).toFixed(1)} MB` : `${(bytes / 1024).toFixed(0)} KB`;
  return [
    `**${model.name}**${model.isLatest ? ' (latest)' : ''} · ${size} on disk`,
    ...keys.map((k) => `${k}: ${model.info[k]}`),
  ].join('\n');
}

/** The settings and results that tell two runs apart, side by side; the differing ones marked. */
const COMPARED = [
  'status',
  'final_loss',
  'quality',
  'eval_loss',
  'eval_quality',
  'profile',
  'base_model',
  'lora_r',
  'scheduler',
  'learning_rate',
  'steps',
  'epochs_seen',
  'dataset_examples',
  'eval_examples',
  'batch_size',
  'grad_accum',
  'max_seq_length',
  'adapted_modules',
  'trainable_parameters',
  'backend',
  'resumes',
  'duration_s',
  'finished_at',
];

export function modelComparison(a: ModelEntry, b: ModelEntry): string {
  const rows = COMPARED.filter((k) => k in a.info || k in b.info).map((k) => {
    const [x, y] = [a.info[k] ?? '—', b.info[k] ?? '—'];
    return `${x === y ? ' ' : '≠'} ${k}: ${x} | ${y}`;
  });
  return [`**Comparing** 🔵 \`${a.name}\` | 🟠 \`${b.name}\``, ...rows].join('\n');
}

/** One row of /models list and /models archived. */
function modelRow(m: ModelEntry): string {
  const when = localMinute(m.createdAt);
  const state =
    m.status === 'succeeded'
      ? `loss ${lossText(m.finalLoss)} ${m.band!.emoji} ${m.band!.label}${m.evalBand ? ` · eval ${lossText(m.evalLoss)} ${m.evalBand.emoji}` : ''}`
      : {
          running: '⏳ training',
          failed: '❌ failed',
          cancelled: '🛑 cancelled',
          interrupted: '⏸️ interrupted',
          out_of_memory: '❌ out of GPU memory',
          disk_full: '❌ disk full',
          unknown: '❔ no training_info.txt',
        }[m.status];
  return `${m.isLatest ? '→' : ' '} \`${m.name}\` · ${m.profile} · ${when} · ${state}${m.rank ? ` · r=${m.rank}` : ''}${m.isLatest ? ' · latest' : ''}`;
}

/** A titled list of rows, newest first, cut to MODELS_LISTED with a line saying how to see the rest. */
function modelRows(title: string, models: ModelEntry[], rest: string): string {
  const more = models.length > MODELS_LISTED ? [`… and ${models.length - MODELS_LISTED} older (${rest})`] : [];
  return [
    `**${title}** (newest first, ${models.length}):`,
    ...models.slice(0, MODELS_LISTED).map(modelRow),
    ...more,
  ].join('\n');
}

export function modelList(models: ModelEntry[]): string {
  if (models.length === 0) return 'No models yet. `/train quick_test` makes one in a few minutes.';
  return modelRows('Models', models, '/models info <name> shows any');
}

/** /models archived: the models in archive/, as /models list shows models. */
export function archivedList(models: ModelEntry[]): string {
  if (models.length === 0)
    return 'Nothing is archived. `/models archive <name>` moves a model there (out of the list, kept on disk).';
  return modelRows('Archived models', models, 'their folders are in models/archive/');
}

const gib = (mib: number) => (mib / 1024).toFixed(1);

/** 42 → "42 s", 300 → "5 min", 7200 → "2 h", 200000 → "2 d": how long ago, at a glance. */
export function ago(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

/** One line of /runners: who, which device and its memory, and what it is doing (or when it was last heard from). */
export function runnerLine(r: RunnerView, now = Date.now(), botModelsId: string | null = null): string {
  const job = r.job
    ? `job ${r.job.id} ${r.job.profile} for ${r.job.requestedBy}, ${r.job.maxSteps ? `step ${r.job.step}/${r.job.maxSteps}` : 'starting'}`
    : null;
  if (!r.live) {
    const since = new Date(r.seenAt);
    const at = since.toISOString().slice(11, 16);
    return `🔇 **${r.name}** · silent since ${at} UTC (${ago((now - since.getTime()) / 1000)} ago)${job ? ` · was on ${job}` : ''}`;
  }
  const d = r.device;
  const device = !d
    ? `${r.gpuClass} · memory unknown (${r.deviceError ?? 'no report'})`
    : d.kind === 'cpu'
      ? `CPU backend, ${d.model} · RAM ${gib(d.usedMiB)}/${gib(d.totalMiB)} GiB used`
      : `${d.model} (${r.gpuClass}) · ${gib(d.usedMiB)}/${gib(d.totalMiB)} GiB used, ${gib(d.totalMiB - d.usedMiB)} free`;
  const elsewhere =
    botModelsId && r.modelsId && r.modelsId !== botModelsId
      ? ' · ⚠️ writes to another models folder than the bot reads: its models will not show here (mount the shared folder as MODELS_DIR)'
      : '';
  const doing = job ?? (r.waitingFor ? `⏸️ waiting for ${r.waitingFor}` : 'idle');
  // live, but its beats stopped: a runner that died (or lost Redis) shows so before its liveness key lapses
  if (r.beatMs && r.sinceBeatMs != null && r.sinceBeatMs > 1.5 * r.beatMs) {
    return `🟡 **${r.name}** · no heartbeat for ${ago(r.sinceBeatMs / 1000)} (one is due every ${ago(r.beatMs / 1000)}): stopped or cut off?${job ? ` · was on ${job}` : ''}`;
  }
  return `🟢 **${r.name}** · ${device} · ${doing}${elsewhere}`;
}

/** /runners. `botModelsId`: the id of the models folder the bot reads, to flag runners that write elsewhere. */
export function runnersTable(runners: RunnerView[], now = Date.now(), botModelsId: string | null = null): string {
  if (runners.length === 0)
    return 'No runner has checked in. Start one with `npm run runner` on a GPU host (README, "A GPU runner host").';
  const live = runners.filter((r) => r.live).length;
  const silent = runners.length - live;
  const head = `**Runners**: ${live} live${silent ? ` · ${silent} silent (no heartbeat: crashed or cut off?)` : ''}`;
  return [head, ...runners.map((r) => runnerLine(r, now, botModelsId))].join('\n');
}
