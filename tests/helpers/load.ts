/**
 * Load through both chat platforms at once, for tests/integration/load.test.ts and bench/load.ts: the real bot (its
 * discord.js client and Bolt app, the real queue on a real Redis, no runner) against the protocol doubles; many users
 * each send their commands at the same moment, and every answer is checked against what is in BullMQ.
 *
 * Each user's commands (4 on average):
 *  - canceller (2 in 5): /train quick_test twice, /queue or /help, and /train cancel of their first job as soon as its
 *    card is in;
 *  - burster (1 in 5): /train quick_test five times (the limit is MAX_QUEUED_PER_USER, 3: two are refused), /train status;
 *  - browser (2 in 5): /train quick_test, /models list, /train status.
 * Users alternate between Discord and Slack.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createBot, type Bot } from '../../src/bot/bot.ts';
import { DiscordChat } from '../../src/platforms/discord/index.ts';
import { SlackChat } from '../../src/platforms/slack/index.ts';
import { loadConfig } from '../../src/shared/config.ts';
import { readCancelFlag } from '../../src/shared/jobs.ts';
import { closeRedis, connectRedis } from '../../src/shared/redis.ts';
import { APP_ID, DiscordDouble, GUILD_ID, type DoubleMessage } from './discord-double.ts';
import { startRelay } from './http-relay.ts';
import { APP_TOKEN, BOT_TOKEN, SlackDouble } from './slack-double.ts';

export const MAX_QUEUED = 3;
/** What Discord and Slack allow before the command shows as failed: the defer / the ack must come sooner. */
export const PLATFORM_DEADLINE_MS = 3_000;
const DISCORD_TOKEN = 'load-bot-token.not-a-real-one.xxxxxxxxxxxxxxxx';

type Platform = 'discord' | 'slack';
export type Kind = 'train' | 'queue' | 'models' | 'help' | 'status' | 'cancel';
type Role = 'canceller' | 'burster' | 'browser';

export interface LoadUser {
  platform: Platform;
  id: string;
  name: string;
  role: Role;
}

export interface LoadStack {
  bot: Bot;
  discord: DiscordChat;
  slack: SlackChat;
  connection: Redis;
  prefix: string;
  discordDouble: DiscordDouble;
  slackDouble: SlackDouble;
  stop(): Promise<void>;
}

/**
 * The bot with both adapters live, each against its double, and no runner: every job stays queued. The bot's HTTP
 * requests reach the doubles through relays in processes of their own (`relay: false` goes straight to them; see
 * tests/helpers/http-relay.mjs for why that would measure the harness), its WebSockets go straight to them.
 */
export async function startLoadStack(
  redisUrl: string,
  prefix: string,
  options: { relay?: boolean } = {},
): Promise<LoadStack> {
  const modelsDir = await mkdtemp(join(tmpdir(), 'load-models-'));
  const discordDouble = new DiscordDouble();
  const slackDouble = new SlackDouble();
  await Promise.all([discordDouble.start(), slackDouble.start()]);
  const relays =
    options.relay === false ? [] : await Promise.all([startRelay(discordDouble.port), startRelay(slackDouble.port)]);
  const [discordBase, slackBase] = relays.length
    ? relays.map((r) => `http://127.0.0.1:${r.port}`)
    : [`http://127.0.0.1:${discordDouble.port}`, `http://127.0.0.1:${slackDouble.port}`];
  slackDouble.httpBase = slackBase;
  const config = loadConfig({
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    MODELS_DIR: modelsDir,
    MAX_QUEUED_PER_USER: String(MAX_QUEUED),
    EMBEDDED_RUNNER: 'false',
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_APP_TOKEN: APP_TOKEN,
    SLACK_API_URL: `${slackBase}/api/`,
  });
  const connection = connectRedis(redisUrl);
  const bot = await createBot(config, connection);
  const discord = new DiscordChat({
    bot,
    token: DISCORD_TOKEN,
    applicationId: APP_ID,
    guildId: GUILD_ID,
    apiBase: `${discordBase}/api`,
  });
  await discord.start();
  const slack = new SlackChat({ bot, ...config.slack! });
  await slack.start();
  await slackDouble.connected;
  return {
    bot,
    discord,
    slack,
    connection,
    prefix,
    discordDouble,
    slackDouble,
    async stop() {
      await slack.stop();
      await discord.stop();
      await bot.close();
      await closeRedis(connection);
      await Promise.all([slackDouble.stop(), discordDouble.stop(), ...relays.map((r) => r.stop())]);
      await rm(modelsDir, { recursive: true, force: true });
    },
  };
}

export function makeUsers(count: number): LoadUser[] {
  return Array.from({ length: count }, (_, u) => {
    const platform: Platform = u % 2 === 0 ? 'discord' : 'slack';
    const role: Role = u % 5 < 2 ? 'canceller' : u % 5 === 2 ? 'burster' : 'browser';
    const n = String(u).padStart(4, '0');
    return platform === 'discord'
      ? { platform, role, id: `160000000000000${n}`, name: `d${n}` }
      : { platform, role, id: `U0L${n}`, name: `s${n}` };
  });
}

/** The commands a user sends at once (a canceller's /train cancel comes later, once their first card is in). */
export function planOf(user: LoadUser, index: number): Kind[] {
  if (user.role === 'canceller') return ['train', 'train', index % 4 < 2 ? 'queue' : 'help'];
  if (user.role === 'burster') return ['train', 'train', 'train', 'train', 'train', 'status'];
  return ['train', 'models', 'status'];
}

export interface Sent {
  user: LoadUser;
  kind: Kind;
  /** Discord: the interaction id; Slack: the envelope id. */
  key: string;
  /** Discord: the interaction token. */
  token?: string;
  /** The job a /train cancel names. */
  jobId?: string;
  sentAt: number;
}

interface Answer {
  text: string;
  at: number;
  private: boolean;
}

export interface LoadResult {
  commands: number;
  users: number;
  /** Per platform: the defer / ack times (ms), and the answer times where an answer can be tied to its command. */
  deferMs: Record<Platform, number[]>;
  answerMs: Record<Platform, number[]>;
  /** From the first command sent to the last answer in (ms), in all and on each platform. */
  spanMs: number;
  platformSpanMs: Record<Platform, number>;
  accepted: number;
  refused: number;
  cancelled: number;
  /** Every way the run went wrong; empty when nothing was lost, duplicated, late or wrong. */
  problems: string[];
  sent: Sent[];
  /** Job id → its owner, for the jobs still queued. */
  queued: Map<string, LoadUser>;
}

const send = (stack: LoadStack, user: LoadUser, kind: Kind, jobId?: string): Sent => {
  const sentAt = performance.now();
  if (user.platform === 'discord') {
    const who = { id: user.id, name: user.name, roles: [] };
    const [command, sub, options]: [string, string | undefined, Record<string, string>] =
      kind === 'train'
        ? ['train', 'quick_test', {}]
        : kind === 'status'
          ? ['train', 'status', {}]
          : kind === 'cancel'
            ? ['train', 'cancel', { job: jobId! }]
            : kind === 'models'
              ? ['models', 'list', {}]
              : [kind, undefined, {}];
    const { id, token } = stack.discordDouble.slash(command, sub, options, who);
    return { user, kind, key: id, token, jobId, sentAt };
  }
  const [command, text] =
    kind === 'train'
      ? ['/train', 'quick_test']
      : kind === 'status'
        ? ['/train', 'status']
        : kind === 'cancel'
          ? ['/train', `cancel ${jobId}`]
          : kind === 'models'
            ? ['/models', 'list']
            : [`/${kind}`, ''];
  return { user, kind, key: stack.slackDouble.slash(command, text, { id: user.id, name: user.name }), jobId, sentAt };
};

const PRIVATE: ReadonlySet<Kind> = new Set(['help', 'status', 'cancel']);
const refusal = `⚠️ you have ${MAX_QUEUED} trainings waiting or running (the limit is ${MAX_QUEUED}); /train status lists them`;
/** A job card as the platform shows it; group 1 is the job id, group 2 whom it is for. */
const cardPattern = (p: Platform) =>
  p === 'discord'
    ? /^🧪 Training job \*\*(\d+)\*\*: \*\*quick_test\*\* · 30 steps · 100 examples · for (\S+)\n🕒 /
    : /^🧪 Training job \*(\d+)\*: \*quick_test\* · 30 steps · 100 examples · for (\S+)\n🕒 /;

/** Is `text` the right kind of answer to `s`? Returns what is wrong, or null. */
function wrongAnswer(s: Sent, a: Answer): string | null {
  const bold = s.user.platform === 'discord' ? '**' : '*';
  const ok = (() => {
    switch (s.kind) {
      case 'train':
        return a.private ? a.text === refusal : cardPattern(s.user.platform).exec(a.text)?.[2] === s.user.name;
      case 'queue':
        return !a.private && (a.text.startsWith(`${bold}Queue${bold}: `) || a.text.startsWith('The queue is empty'));
      case 'models':
        return !a.private && a.text === 'No models yet. `/train quick_test` makes one in a few minutes.';
      case 'help':
        return a.private && a.text.startsWith(`${bold}Commands${bold}\n`) && a.text.includes('/train cancel');
      case 'status':
        return (
          a.private &&
          (a.text === 'You have no jobs waiting or running; /queue shows everyone’s.' ||
            a.text.split('\n').every((l) => l.match(/^🕒 job \d+ waiting: quick_test for (\S+)$/)?.[1] === s.user.name))
        );
      case 'cancel':
        return a.private && a.text === `🛑 job ${s.jobId} cancelled before it started`;
    }
  })();
  return ok
    ? null
    : `${s.user.platform} ${s.user.name} /${s.kind}: unexpected answer (${a.private ? 'private' : 'public'}) ${JSON.stringify(a.text.slice(0, 160))}`;
}

/** Collects the answers the doubles have seen, by command where the platform ties them to it. */
class Answers {
  constructor(private readonly stack: LoadStack) {}

  /** Discord: the first text an interaction got (its edited original, or a follow-up), by interaction token. */
  discord(): Map<string, Answer> {
    const out = new Map<string, Answer>();
    for (const m of this.stack.discordDouble.messages.values()) {
      const token = (m as DoubleMessage & { token?: string }).token;
      const first = m.history.find((h) => h.content !== '');
      if (!token || !first) continue;
      const had = out.get(token);
      if (!had || first.at < had.at)
        out.set(token, { text: first.content, at: first.at, private: (m.flags & 64) !== 0 });
    }
    return out;
  }

  /** Slack: private answers by envelope; public ones (job cards, /queue, /models list) carry no envelope. */
  slackPrivate(): Map<string, Answer> {
    const out = new Map<string, Answer>();
    for (const e of this.stack.slackDouble.ephemeral)
      if (e.envelope && !out.has(e.envelope)) out.set(e.envelope, { text: e.text, at: e.at, private: true });
    return out;
  }

  slackPublic(): Answer[] {
    return [...this.stack.slackDouble.messages.values()]
      .filter((m) => m.threadTs === undefined)
      .map((m) => ({ text: m.history[0]!.text, at: m.history[0]!.at, private: false }));
  }
}

const percentile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : NaN;
};
export const p50 = (xs: number[]) => percentile(xs, 0.5);
export const p99 = (xs: number[]) => percentile(xs, 0.99);

/**
 * Sends every user's commands at the same moment (round-robin over users, so the platforms interleave), sends each
 * canceller's /train cancel as soon as their first card is in, waits for every answer (or `timeoutMs`), and checks
 * the answers and the queue.
 */
export async function runLoad(stack: LoadStack, userCount: number, timeoutMs = 60_000): Promise<LoadResult> {
  const users = makeUsers(userCount);
  const plans = users.map((u, i) => planOf(u, i));
  const sent: Sent[] = [];
  const started = performance.now();
  for (let round = 0; round < Math.max(...plans.map((p) => p.length)); round++) {
    users.forEach((u, i) => {
      if (plans[i]![round]) sent.push(send(stack, u, plans[i]![round]!));
    });
  }
  const answers = new Answers(stack);
  const cancelSent = new Set<LoadUser>();
  const expectCancels = users.filter((u) => u.role === 'canceller').length;

  /** Slack job cards by the user they are for. */
  const slackCards = () => {
    const byName = new Map<string, { id: string; at: number }[]>();
    for (const a of answers.slackPublic()) {
      const m = cardPattern('slack').exec(a.text);
      if (m) byName.set(m[2]!, [...(byName.get(m[2]!) ?? []), { id: m[1]!, at: a.at }]);
    }
    return byName;
  };
  /** Job ids in the cards a user has received so far, first in first. */
  const cardsOf = (
    u: LoadUser,
    discord: Map<string, Answer>,
    slack: Map<string, { id: string; at: number }[]>,
  ): string[] => {
    if (u.platform === 'slack') return [...(slack.get(u.name) ?? [])].sort((a, b) => a.at - b.at).map((c) => c.id);
    return sent
      .filter((s) => s.user === u && s.kind === 'train')
      .map((s) => discord.get(s.token!))
      .filter((a): a is Answer => a !== undefined && !a.private)
      .sort((a, b) => a.at - b.at)
      .map((a) => cardPattern('discord').exec(a.text)?.[1] ?? '?');
  };
  const unanswered = (): Sent[] => {
    const discord = answers.discord();
    const slackPrivate = answers.slackPrivate();
    const slack = slackCards();
    const publicTexts = answers.slackPublic().map((a) => a.text);
    const missing = sent.filter((s) => s.user.platform === 'discord' && !discord.has(s.token!));
    // Slack: a command with a private answer is tied to it by its envelope; public ones are counted per user / kind
    const slackSent = sent.filter((s) => s.user.platform === 'slack');
    missing.push(...slackSent.filter((s) => PRIVATE.has(s.kind) && !slackPrivate.has(s.key)));
    for (const u of users.filter((x) => x.platform === 'slack')) {
      const trains = slackSent.filter((s) => s.user === u && s.kind === 'train');
      const answered = (slack.get(u.name)?.length ?? 0) + trains.filter((s) => slackPrivate.has(s.key)).length;
      missing.push(...trains.slice(answered));
    }
    for (const [kind, pattern] of [
      ['queue', /^(\*Queue\*: |The queue is empty)/],
      ['models', /^No models yet/],
    ] as const) {
      const asked = slackSent.filter((s) => s.kind === kind);
      missing.push(...asked.slice(publicTexts.filter((t) => pattern.test(t)).length));
    }
    return missing;
  };

  const deadline = performance.now() + timeoutMs;
  let missing: Sent[] = [];
  for (;;) {
    if (cancelSent.size < expectCancels) {
      const discord = answers.discord();
      const slack = slackCards();
      for (const u of users.filter((x) => x.role === 'canceller' && !cancelSent.has(x))) {
        const [first] = cardsOf(u, discord, slack);
        if (first) cancelSent.add(u), sent.push(send(stack, u, 'cancel', first));
      }
    }
    missing = unanswered();
    if ((missing.length === 0 && cancelSent.size === expectCancels) || performance.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const problems: string[] = [];
  if (missing.length)
    problems.push(
      `${missing.length} commands got no answer within ${timeoutMs} ms, e.g. ${missing
        .slice(0, 5)
        .map((s) => `${s.user.platform} ${s.user.name} /${s.kind}`)
        .join(', ')}`,
    );
  if (cancelSent.size < expectCancels)
    problems.push(`${expectCancels - cancelSent.size} cancellers never saw a job card to cancel`);

  // --- the defer / ack of every command, within the platform's deadline
  const deferMs: Record<Platform, number[]> = { discord: [], slack: [] };
  for (const s of sent) {
    const delay =
      s.user.platform === 'discord' ? stack.discordDouble.answerDelayMs(s.key) : stack.slackDouble.ackDelays.get(s.key);
    if (delay === undefined) {
      problems.push(
        `${s.user.platform} ${s.user.name} /${s.kind}: never ${s.user.platform === 'discord' ? 'deferred' : 'acked'}`,
      );
      continue;
    }
    deferMs[s.user.platform].push(delay);
    if (delay >= PLATFORM_DEADLINE_MS)
      problems.push(
        `${s.user.platform} ${s.user.name} /${s.kind}: ${s.user.platform === 'discord' ? 'deferred' : 'acked'} after ${delay.toFixed(0)} ms`,
      );
    if (s.user.platform === 'discord') {
      const cb = stack.discordDouble.callbacks.get(s.key)!;
      if (cb.type !== 5 || cb.flags !== (PRIVATE.has(s.kind) ? 64 : 0))
        problems.push(`discord ${s.user.name} /${s.kind}: callback type ${cb.type} flags ${cb.flags}`);
    }
  }

  // --- every answer of the right kind; the job ids each user was given
  const answerMs: Record<Platform, number[]> = { discord: [], slack: [] };
  const lastAnswer: Record<Platform, number> = { discord: started, slack: started };
  const discord = answers.discord();
  const slackPrivate = answers.slackPrivate();
  const given = new Map<string, LoadUser[]>(); // job id → the users whose card named it
  let refused = 0;
  for (const s of sent) {
    const a = s.user.platform === 'discord' ? discord.get(s.token!) : slackPrivate.get(s.key);
    if (!a) continue;
    answerMs[s.user.platform].push(a.at - s.sentAt);
    lastAnswer[s.user.platform] = Math.max(lastAnswer[s.user.platform], a.at);
    const wrong = wrongAnswer(s, a);
    if (wrong) problems.push(wrong);
    if (s.kind === 'train' && a.private && !wrong) refused++;
    if (s.kind === 'train' && !a.private && !wrong) {
      const id = cardPattern('discord').exec(a.text)![1]!;
      given.set(id, [...(given.get(id) ?? []), s.user]);
    }
  }
  const cancels = sent.filter((s) => s.kind === 'cancel');
  const cancelled = new Set(cancels.map((s) => s.jobId!));
  for (const a of answers.slackPublic()) {
    const m = cardPattern('slack').exec(a.text);
    const owner = m && users.find((u) => u.platform === 'slack' && u.name === m[2]);
    if (m && owner) given.set(m[1]!, [...(given.get(m[1]!) ?? []), owner]);
    else if (m) problems.push(`slack: a job card for nobody who asked: ${JSON.stringify(a.text.slice(0, 120))}`);
    // the job watcher tells whoever asked that their job was cancelled, in a new message that mentions them
    const ping = /^<@(\w+)> job (\d+) was cancelled$/.exec(a.text);
    if (ping && !cancels.some((c) => c.jobId === ping[2] && c.user.id === ping[1]))
      problems.push(`slack: a cancel notice for a job not cancelled by its owner: ${a.text}`);
    if (!ping) lastAnswer.slack = Math.max(lastAnswer.slack, a.at); // a notice is no answer to a command
    if (!m && !ping && !/^(\*Queue\*: |The queue is empty|No models yet)/.test(a.text))
      problems.push(`slack: an unexpected public message ${JSON.stringify(a.text.slice(0, 120))}`);
  }
  const slackQueueAnswers = answers
    .slackPublic()
    .filter((a) => /^(\*Queue\*: |The queue is empty)/.test(a.text)).length;
  const slackModelAnswers = answers.slackPublic().filter((a) => /^No models yet/.test(a.text)).length;
  if (slackQueueAnswers !== sent.filter((s) => s.user.platform === 'slack' && s.kind === 'queue').length)
    problems.push(
      `slack: ${slackQueueAnswers} /queue answers for ${sent.filter((s) => s.user.platform === 'slack' && s.kind === 'queue').length} asked`,
    );
  if (slackModelAnswers !== sent.filter((s) => s.user.platform === 'slack' && s.kind === 'models').length)
    problems.push(
      `slack: ${slackModelAnswers} /models list answers for ${sent.filter((s) => s.user.platform === 'slack' && s.kind === 'models').length} asked`,
    );

  // --- no duplicate: one card per job id; the limit: exactly min(sent, MAX) per user
  for (const [id, owners] of given)
    if (owners.length > 1)
      problems.push(`job ${id} was given to ${owners.length} commands (${owners.map((o) => o.name).join(', ')})`);
  for (const u of users) {
    const trains = plans[users.indexOf(u)]!.filter((k) => k === 'train').length;
    const got = [...given.values()].filter((o) => o.includes(u)).length;
    if (got !== Math.min(trains, MAX_QUEUED))
      problems.push(`${u.platform} ${u.name}: ${got} jobs queued for ${trains} /train (limit ${MAX_QUEUED})`);
  }

  // --- nothing lost, nothing extra: BullMQ holds exactly the jobs given out, less those cancelled, each its owner's
  const jobs = await stack.bot.queue.queue.getJobs([
    'waiting',
    'active',
    'prioritized',
    'delayed',
    'completed',
    'failed',
  ]);
  const inQueue = new Map(jobs.map((j) => [j.id!, j]));
  const queued = new Map<string, LoadUser>();
  for (const [id, [owner]] of given) {
    const job = inQueue.get(id);
    if (cancelled.has(id)) {
      if (job) problems.push(`job ${id} was cancelled but is still ${await job.getState()}`);
      const flag = await readCancelFlag(stack.connection, stack.prefix, id);
      if (flag?.by !== owner!.name)
        problems.push(`job ${id}: cancel flag ${JSON.stringify(flag)}, expected by ${owner!.name}`);
      continue;
    }
    if (!job) {
      problems.push(`job ${id} (${owner!.name}) is not in the queue: lost`);
      continue;
    }
    const by = job.data.requestedBy;
    if (by.id !== owner!.id || by.platform !== owner!.platform || by.name !== owner!.name)
      problems.push(`job ${id}: requested by ${JSON.stringify(by)}, its card went to ${owner!.name}`);
    const state = await job.getState();
    // queued for any runner: BullMQ keeps jobs with a priority in its prioritized set
    if (state !== 'waiting' && state !== 'prioritized') problems.push(`job ${id} is ${state}, not waiting`);
    queued.set(id, owner!);
  }
  for (const id of inQueue.keys()) if (!given.has(id)) problems.push(`job ${id} is in the queue but no card named it`);
  if (jobs.length !== given.size - cancelled.size)
    problems.push(`${jobs.length} jobs in BullMQ for ${given.size} accepted and ${cancelled.size} cancelled`);
  // BullMQ numbers its jobs from one counter: no job was added (and removed again) beyond those answered
  const counter = Number(await stack.connection.get(`${stack.prefix}:train:id`));
  if (counter !== given.size) problems.push(`BullMQ's job counter is ${counter}, for ${given.size} jobs accepted`);

  return {
    commands: sent.length,
    users: userCount,
    deferMs,
    answerMs,
    spanMs: Math.max(lastAnswer.discord, lastAnswer.slack) - started,
    platformSpanMs: { discord: lastAnswer.discord - started, slack: lastAnswer.slack - started },
    accepted: given.size,
    refused,
    cancelled: cancelled.size,
    problems,
    sent,
    queued,
  };
}

/** Every owner cancels their remaining jobs through their platform, all at once; returns what went wrong. */
export async function cancelAll(
  stack: LoadStack,
  queued: Map<string, LoadUser>,
  timeoutMs = 60_000,
): Promise<string[]> {
  const sent = [...queued].map(([id, owner]) => send(stack, owner, 'cancel', id));
  const answers = new Answers(stack);
  const answerOf = (s: Sent) =>
    s.user.platform === 'discord' ? answers.discord().get(s.token!) : answers.slackPrivate().get(s.key);
  const deadline = performance.now() + timeoutMs;
  while (sent.some((s) => !answerOf(s)) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  const problems: string[] = [];
  for (const s of sent) {
    const a = answerOf(s);
    if (!a) problems.push(`${s.user.platform} ${s.user.name} /train cancel ${s.jobId}: no answer`);
    else {
      const wrong = wrongAnswer(s, a);
      if (wrong) problems.push(wrong);
    }
  }
  const left = await stack.bot.queue.queue.getJobCounts('waiting', 'active', 'prioritized', 'delayed');
  if (Object.values(left).some((n) => n !== 0)) problems.push(`the queue is not empty: ${JSON.stringify(left)}`);
  return problems;
}
