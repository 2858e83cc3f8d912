/**
 * Hostile input (tests/fixtures/hostile-inputs.json) against every platform adapter, each with one bot for every case:
 * the console, Discord (the real discord.js on the gateway double) and Slack (the real Bolt app in Socket Mode on the
 * Slack double), over the real Redis and with no runner (nothing that is refused may need one). What a user would
 * notice is checked: one short private line that says what is allowed (or, for input that is legitimately taken,
 * the answer and exactly its job), nothing queued, no trainer or worker started, nothing written outside the test's
 * models folder, no canary file created, Redis untouched. Then requests that are unsigned, stale or replayed.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it, type TestContext } from 'vitest';
import { createBot, type Bot, type BotServices } from '../../src/bot/bot.ts';
import { DiscordChat } from '../../src/platforms/discord/index.ts';
import { SlackChat } from '../../src/platforms/slack/index.ts';
import { loadConfig, REPO_ROOT, type Config } from '../../src/shared/config.ts';
import { closeRedis, connectRedis, freePort } from '../../src/shared/redis.ts';
import { APP_ID, DiscordDouble, GUILD_ID } from '../helpers/discord-double.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { commandLines } from '../helpers/processes.ts';
import { APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, SlackDouble, sign } from '../helpers/slack-double.ts';
import { until } from '../helpers/until.ts';

interface Case {
  name: string;
  command: string;
  text: string;
  discord: { sub?: string; options?: Record<string, string | number>; refusedByDiscord?: string; raw?: boolean };
  only?: string[];
  expect: 'error' | 'accepted';
  error?: string;
  reply?: string;
  queues?: { train?: Record<string, unknown>; ask?: { model: string; effort?: string; prompt: string } };
}

const CORPUS = JSON.parse(readFileSync(join(REPO_ROOT, 'tests/fixtures/hostile-inputs.json'), 'utf8')) as {
  cases: Case[];
};
const DISCORD_TOKEN = 'test-bot-token.not-a-real-one.hostile0000';
const DISCORD_ADA = { id: '1600000000000000001', name: 'ada' };
const SLACK_ADA = { id: 'U0ADA', name: 'ada' };
/** The longest string option a Discord client sends. */
const DISCORD_STRING_MAX = 6_000;
/** After the answer, how long anything else the bot might still send is waited for. */
const SETTLE_MS = 80;
const QUEUES = ['train', 'ask'] as const;

/** `{canary}` is a path that must never come to exist; `{repeat:N:s}` is s, N times. */
function expand<T>(value: T, canary: string): T {
  if (typeof value === 'string') {
    return value
      .replaceAll('{canary}', canary)
      .replace(/\{repeat:(\d+):([^}]*)\}/g, (_, n: string, s: string) => s.repeat(Number(n))) as T;
  }
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [expand(k, canary), expand(v, canary)])) as T;
  return value;
}

/** Every path under `dir` with its size and mtime: what a case may not change. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const s = lstatSync(p);
      out.push(`${p} ${s.size} ${s.mtimeMs}`);
      if (s.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** BullMQ's id counters of both queues: any job ever added moves one, even if it was removed at once. */
async function counters(redis: Redis, prefix: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const q of QUEUES) out[q] = Number((await redis.get(`${prefix}:${q}:id`)) ?? 0);
  return out;
}

const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed', 'waiting-children'] as const;
async function jobs(bot: BotServices) {
  return { train: await bot.queue.queue.getJobs([...JOB_STATES]), ask: await bot.asks.queue.getJobs([...JOB_STATES]) };
}

/** What the caller (and the channel) got from the bot for one case. */
interface Seen {
  /** Every message the case made, in order; `private`: only the caller sees it. Text as the platform shows it. */
  messages: { text: string; private: boolean }[];
  /** Whether every public message was sent so that it notifies nobody. */
  pingsNobody: boolean;
}

interface Platform {
  name: string;
  bot: BotServices;
  redis: Redis;
  /** The case as the platform delivers it, or why the platform itself would not (Discord's own checks). */
  send(c: Case): Promise<Seen | { refused: string }>;
  /** An ask's message shows only once it is answered (the console on a pipe), and no runner answers here. */
  quietAsks?: boolean;
}

const INVISIBLE = /[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/u;
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/u;

function expectShortError(text: string, pattern: string): void {
  expect(text.startsWith('⚠️ '), `a refusal the user can act on, not an internal error: ${text.slice(0, 200)}`).toBe(
    true,
  );
  expect(text.length).toBeLessThan(300);
  expect(text.split('\n').length).toBeLessThanOrEqual(2);
  expect(text, 'control characters echoed').not.toMatch(CONTROL);
  expect(text, 'bidi or zero-width characters echoed').not.toMatch(INVISIBLE);
  expect(text, 'half an emoji').not.toMatch(/[\p{Cs}\ufffd]/u);
  expect(text).not.toMatch(/<[@!#]|@everyone|@here/);
  expect(text).toMatch(new RegExp(`^⚠️ (?:${pattern})$`, 'u'));
}

function runCorpus(platform: () => Platform, sandbox: () => string): void {
  CORPUS.cases.forEach((raw, index) => {
    it(raw.name, async (t: TestContext) => {
      const p = platform();
      if (raw.only && !raw.only.includes(p.name)) {
        t.skip(`only on ${raw.only.join(', ')}`);
        return;
      }
      const canary = join(tmpdir(), `hostile-canary-${process.pid}-${p.name}-${index}`);
      const c = expand(raw, canary);
      const files = snapshot(sandbox());
      const before = await counters(p.redis, p.bot.config.queuePrefix);
      const seen = await p.send(c);
      if ('refused' in seen) {
        // the corpus says so too: a command registered differently (a string r, say) makes the case deliverable
        expect(c.discord.refusedByDiscord, `Discord would refuse it (${seen.refused})`).toBeDefined();
        t.skip(`Discord itself refuses it: ${seen.refused}`);
        return;
      }
      if (p.name === 'discord') expect(c.discord.refusedByDiscord, 'Discord delivers it').toBeUndefined();

      expect(existsSync(canary), 'the canary file was created').toBe(false);
      expect(commandLines().filter((l) => l.includes(sandbox()))).toEqual([]);
      expect(await p.redis.get(`${p.bot.config.queuePrefix}:canary`)).toBe('alive');
      const after = await counters(p.redis, p.bot.config.queuePrefix);

      if (c.expect === 'error') {
        expect(seen.messages).toHaveLength(1);
        expect(seen.messages[0]!.private, 'the refusal is private').toBe(true);
        expectShortError(seen.messages[0]!.text, c.error!);
        expect(after, 'nothing was queued').toEqual(before);
        expect(snapshot(sandbox()), 'nothing was written').toEqual(files);
        return;
      }

      const queue = c.queues!.train ? 'train' : 'ask';
      if (queue === 'ask' && p.quietAsks) expect(seen.messages.map((m) => m.text)).toEqual(['']);
      else expect(seen.messages[0]?.text).toMatch(new RegExp(`^${c.reply!}$`, 'mu'));
      expect(seen.pingsNobody).toBe(true);
      expect(after).toEqual({ ...before, [queue]: before[queue]! + 1 });
      const job = (await jobs(p.bot))[queue].find((j) => Number(j.id) === after[queue]);
      try {
        if (c.queues!.ask) {
          const { model, effort, prompt } = c.queues!.ask;
          expect(job?.data).toMatchObject({
            model,
            reasoningEffort: effort ?? 'low',
            messages: [{ role: 'user', content: prompt }],
          });
        } else {
          expect(job?.data).toMatchObject(c.queues!.train!);
        }
      } finally {
        if (queue === 'train') {
          await p.bot.queue.cancel(String(job!.id), 'test');
          await p.bot.watcher.settled(); // its message says "cancelled" before the next case begins
        } else await job?.remove();
      }
      expect(snapshot(sandbox()), 'nothing was written').toEqual(files);
    });
  });
}

/** A python that must never run: it leaves a mark in the sandbox, which the snapshot would show. */
function tripwire(sandbox: string): string {
  const path = join(sandbox, 'python-tripwire');
  writeFileSync(path, `#!/bin/sh\necho "$@" >> "${sandbox}/tripwire-ran"\nexit 1\n`, { mode: 0o755 });
  return path;
}

/**
 * Models folders three levels down: a `../../` out of one still lands in the sandbox, where the snapshot sees it.
 * Each holds one finished model that latest points at (written here, not trained), so an ask for latest is taken.
 */
function modelsDirIn(sandbox: string, platform: string): string {
  const dir = join(sandbox, platform, 'a', 'b', 'models');
  const model = 'tiny-gpt-oss_quick_test_20250101_1000';
  mkdirSync(join(dir, model), { recursive: true });
  writeFileSync(join(dir, model, 'training_info.txt'), 'status: succeeded\nfinal_loss: 1.2345\nprofile: quick_test\n');
  symlinkSync(model, join(dir, 'latest'));
  return dir;
}

let prefixes = 0;
const prefix = (name: string) => `hostile${process.pid}x${name}${++prefixes}`;

async function botFor(
  env: Record<string, string>,
): Promise<{ config: Config; bot: Bot; redis: Redis; stop(): Promise<void> }> {
  const config = loadConfig({ REDIS_URL: inject('redisUrl'), EMBEDDED_RUNNER: 'false', ...env });
  const redis = connectRedis(config.redisUrl!);
  const bot = await createBot(config, redis);
  await redis.set(`${config.queuePrefix}:canary`, 'alive');
  return { config, bot, redis, stop: async () => (await bot.close(), await closeRedis(redis)) };
}

let sandbox: string;
beforeAll(async () => {
  sandbox = await mkdtemp(join(tmpdir(), 'hostile-'));
});
afterAll(async () => {
  await rm(sandbox, { recursive: true, force: true });
  // no case anywhere made a canary
  expect(readdirSync(tmpdir()).filter((f) => f.startsWith(`hostile-canary-${process.pid}-`))).toEqual([]);
});

describe('hostile input on the console', () => {
  let h: Harness;
  let platform: Platform;
  beforeAll(async () => {
    h = await startHarness({
      EMBEDDED_RUNNER: 'false',
      MODELS_DIR: modelsDirIn(sandbox, 'console'),
      PYTHON: tripwire(sandbox),
    });
    await h.app.connection.set(`${h.app.bot.config.queuePrefix}:canary`, 'alive');
    platform = {
      name: 'console',
      bot: h.app.bot,
      redis: h.app.connection,
      quietAsks: true,
      async send(c) {
        const from = h.lines.length;
        const before = await counters(h.app.connection, h.app.bot.config.queuePrefix);
        h.type(`/${c.command}${c.text ? ` ${c.text}` : ''}`);
        // an answer, or an ask queued (which prints nothing until answered)
        const asked = async () => (await counters(h.app.connection, h.app.bot.config.queuePrefix)).ask !== before.ask;
        await until('an answer', async () => h.lines.length > from || (await asked()), 10_000);
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        // a terminal is the caller's own: everything printed is private, and pings nobody
        return { messages: [{ text: h.lines.slice(from).join('\n'), private: true }], pingsNobody: true };
      },
    };
  });
  afterAll(() => h?.stop());
  runCorpus(
    () => platform,
    () => sandbox,
  );
});

/** Why Discord itself would not deliver this slash command, by the commands the bot registered; null if it would. */
function discordRefuses(c: Case, registered: any[]): string | null {
  const command = registered.find((r) => r.name === c.command);
  if (!command) return `no /${c.command} is registered`;
  let options: any[] = command.options ?? [];
  if (options.some((o) => o.type === 1)) {
    const sub = options.find((o) => o.type === 1 && o.name === c.discord.sub);
    if (!sub)
      return c.discord.sub === undefined
        ? 'a subcommand is needed'
        : `no subcommand '${c.discord.sub.slice(0, 20)}' is registered`;
    options = sub.options ?? [];
  } else if (c.discord.sub !== undefined) return `/${c.command} has no subcommands`;
  const given = c.discord.options ?? {};
  for (const [name, value] of Object.entries(given)) {
    const option = options.find((o) => o.name === name);
    if (!option) return `no option '${name.slice(0, 20)}' is registered`;
    if (value === '') return `a client sends no empty ${name}`;
    if (option.type === 4 && !(typeof value === 'number' && Number.isSafeInteger(value)))
      return `${name} is an integer option`;
  }
  const missing = options.find((o) => o.required && !(o.name in given));
  return missing ? `${missing.name} is required` : null;
}

describe('hostile input on Discord', () => {
  const double = new DiscordDouble();
  let stack: Awaited<ReturnType<typeof botFor>>;
  let discord: DiscordChat;
  let platform: Platform;
  beforeAll(async () => {
    await double.start();
    stack = await botFor({
      QUEUE_PREFIX: prefix('discord'),
      MODELS_DIR: modelsDirIn(sandbox, 'discord'),
      PYTHON: tripwire(sandbox),
      DISCORD_TOKEN,
      DISCORD_APPLICATION_ID: APP_ID,
      DISCORD_GUILD_ID: GUILD_ID,
      DISCORD_API_BASE: double.apiBase,
    });
    discord = new DiscordChat({
      bot: stack.bot,
      token: DISCORD_TOKEN,
      applicationId: APP_ID,
      guildId: GUILD_ID,
      apiBase: double.apiBase,
      chatThreads: true,
    });
    await discord.start();
    platform = {
      name: 'discord',
      bot: stack.bot,
      redis: stack.redis,
      async send(c) {
        // raw: what no client sends, as a hostile caller can (the gateway delivers it all the same)
        const refused = c.discord.raw ? null : discordRefuses(c, double.commands);
        if (refused) return { refused };
        const options = Object.fromEntries(
          Object.entries(c.discord.options ?? {}).map(([k, v]) => [
            k,
            typeof v === 'string' ? v.slice(0, DISCORD_STRING_MAX) : v,
          ]),
        );
        const known = new Set(double.messages.keys());
        const requestsFrom = double.requests.length;
        const { token } = double.slash(c.command, c.discord.sub, options, DISCORD_ADA);
        const fresh = () => [...double.messages.values()].filter((m) => !known.has(m.id));
        await until('an answer', () => fresh().some((m) => m.content !== ''), 10_000);
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        // what went out for everyone to see must allow no mention at all
        const publicWrite = (r: (typeof double.requests)[number]) => {
          if (typeof r.body?.content !== 'string' || r.method === 'GET' || r.method === 'DELETE') return false;
          if (r.path.endsWith('/messages/@original')) return !((double.original(token)?.flags ?? 0) & 64);
          return !(Number(r.body.flags ?? 0) & 64);
        };
        const pingsNobody = double.requests
          .slice(requestsFrom)
          .filter(publicWrite)
          .every((r) => JSON.stringify(r.body.allowed_mentions) === JSON.stringify({ parse: [] }));
        return { messages: fresh().map((m) => ({ text: m.content, private: (m.flags & 64) !== 0 })), pingsNobody };
      },
    };
  });
  afterAll(async () => {
    await discord?.stop();
    await stack?.stop();
    await double.stop();
  });
  runCorpus(
    () => platform,
    () => sandbox,
  );

  it('a second delivery of one interaction is ignored: one defer, one job, one message', async () => {
    const before = await counters(stack.redis, stack.config.queuePrefix);
    const { id, token } = double.slash('train', 'quick_test', {}, DISCORD_ADA);
    await until('the job card', () => /^🧪 Training job \*\*\d+\*\*/.test(double.original(token)?.content ?? ''));
    double.redeliver(id);
    await new Promise((r) => setTimeout(r, 500));
    expect(double.requests.filter((r) => r.path.startsWith(`/interactions/${id}/`))).toHaveLength(1);
    expect(await counters(stack.redis, stack.config.queuePrefix)).toEqual({ ...before, train: before.train! + 1 });
    expect(double.messagesOf(token)).toHaveLength(1);
    await stack.bot.queue.cancel(String(before.train! + 1), 'test');
    await stack.bot.watcher.settled();
  });
});

describe('hostile input on Slack', () => {
  const double = new SlackDouble();
  let stack: Awaited<ReturnType<typeof botFor>>;
  let slack: SlackChat;
  let platform: Platform;
  beforeAll(async () => {
    await double.start();
    stack = await botFor({
      QUEUE_PREFIX: prefix('slack'),
      MODELS_DIR: modelsDirIn(sandbox, 'slack'),
      PYTHON: tripwire(sandbox),
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_APP_TOKEN: APP_TOKEN,
      SLACK_API_URL: double.apiUrl,
    });
    slack = new SlackChat({ bot: stack.bot, ...stack.config.slack! });
    await slack.start();
    await double.connected;
    platform = {
      name: 'slack',
      bot: stack.bot,
      redis: stack.redis,
      async send(c) {
        const posted = double.calls.length;
        const whispered = double.ephemeral.length;
        const envelope = double.slash(`/${c.command}`, c.text, SLACK_ADA);
        const fresh = () => [
          ...double.ephemeral.slice(whispered).map((e) => ({ text: e.text, private: e.user === SLACK_ADA.id })),
          ...double.calls
            .slice(posted)
            .filter((x) => x.method === 'chat.postMessage')
            .map((x) => ({ text: String(x.args.text), private: false })),
        ];
        await until('an answer', () => fresh().length > 0, 10_000);
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        expect(double.ackDelays.get(envelope)).toBeLessThan(3_000);
        const messages = fresh();
        // a Slack message notifies whom its <@U…> and <!…> name: none may come from what the user typed
        const pingsNobody = messages.every((m) => !/<[@!]/.test(m.text));
        // the user sees mrkdwn: &, < and > as they typed them
        return {
          messages: messages.map((m) => ({
            ...m,
            text: m.text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'),
          })),
          pingsNobody,
        };
      },
    };
  });
  afterAll(async () => {
    await slack?.stop();
    await stack?.stop();
    await double.stop();
  });
  runCorpus(
    () => platform,
    () => sandbox,
  );
});

describe('Slack over HTTP: unsigned, stale and replayed requests', () => {
  const double = new SlackDouble();
  let stack: Awaited<ReturnType<typeof botFor>>;
  let slack: SlackChat;
  let url: string;
  beforeAll(async () => {
    await double.start();
    const port = await freePort();
    stack = await botFor({
      QUEUE_PREFIX: prefix('slackhttp'),
      MODELS_DIR: modelsDirIn(sandbox, 'slackhttp'),
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_MODE: 'http',
      SLACK_PORT: String(port),
      SLACK_API_URL: double.apiUrl,
    });
    slack = new SlackChat({ bot: stack.bot, ...stack.config.slack! });
    await slack.start();
    url = `http://127.0.0.1:${port}/slack/events`;
  });
  afterAll(async () => {
    for (const j of (await jobs(stack.bot)).train)
      await stack.bot.queue.cancel(String(j.id), 'test').catch(() => undefined);
    await slack?.stop();
    await stack?.stop();
    await double.stop();
  });

  const post = (body: string, headers: Record<string, string>) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
  const signed = (body: string, timestamp: number, secret = SIGNING_SECRET) => ({
    'x-slack-request-timestamp': String(timestamp),
    'x-slack-signature': sign(secret, timestamp, body),
  });
  const trainForm = () =>
    new URLSearchParams(double.payload('/train', 'quick_test', SLACK_ADA) as Record<string, string>).toString();
  const answers = () => double.calls.filter((c) => c.method === 'chat.postMessage').length + double.ephemeral.length;

  it('refuses a request with no signature, a bad one, or a stale one (over 5 minutes), and runs none of them', async () => {
    const before = await counters(stack.redis, stack.config.queuePrefix);
    const answered = answers();
    const now = Math.floor(Date.now() / 1000);
    const body = trainForm();
    expect((await post(body, {})).status).toBe(401);
    expect((await post(body, { 'x-slack-request-timestamp': String(now) })).status).toBe(401);
    expect((await post(body, signed(body, now, 'not-the-secret'))).status).toBe(401);
    expect((await post(body, signed(body, now - 5 * 60 - 30))).status).toBe(401);
    await new Promise((r) => setTimeout(r, 300));
    expect(await counters(stack.redis, stack.config.queuePrefix)).toEqual(before);
    expect(answers()).toBe(answered);
  });

  it('runs a signed request once: the same request again (same trigger_id, inside its 5 minutes) is acked and ignored', async () => {
    const before = await counters(stack.redis, stack.config.queuePrefix);
    const now = Math.floor(Date.now() / 1000);
    const body = trainForm();
    const headers = signed(body, now);
    expect((await post(body, headers)).status).toBe(200);
    await until('the job card', () => double.find(/^🧪 Training job \*\d+\*: \*quick_test\*/));
    const answered = answers();
    expect((await post(body, headers)).status).toBe(200); // acked, so Slack does not show the user an error
    await new Promise((r) => setTimeout(r, 500));
    expect(await counters(stack.redis, stack.config.queuePrefix)).toEqual({ ...before, train: before.train! + 1 });
    expect(answers()).toBe(answered);
    // another request (its own trigger_id) is not a replay
    const other = trainForm();
    expect((await post(other, signed(other, now))).status).toBe(200);
    await expect
      .poll(async () => (await counters(stack.redis, stack.config.queuePrefix)).train, { timeout: 10_000 })
      .toBe(before.train! + 2);
  });
});
