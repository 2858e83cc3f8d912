/**
 * The real Bolt app against a local stand-in for Slack (tests/helpers/slack-double.ts replaces Slack's Web API and
 * Socket Mode servers), with the real queue, runner and trainer behind it; and Bolt's HTTP mode with real request
 * signatures.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from '../helpers/until.ts';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRunner, type Runner } from '../../gpu-runner/runner.ts';
import { createBot, type Bot } from '../../src/bot/bot.ts';
import { SlackChat } from '../../src/platforms/slack/index.ts';
import { loadConfig, REPO_ROOT, type Config } from '../../src/shared/config.ts';
import { closeRedis, connectRedis, freePort } from '../../src/shared/redis.ts';
import { APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, SlackDouble, sign, type SlackMessage } from '../helpers/slack-double.ts';

const ADA = { id: 'U0ADA', name: 'ada' };
const EVE = { id: 'U0EVE', name: 'eve' };
let prefixCounter = 0;

interface Stack {
  config: Config;
  bot: Bot;
  slack: SlackChat;
  runner: Runner;
  stop(): Promise<void>;
}

async function startStack(double: SlackDouble, env: Record<string, string>): Promise<Stack> {
  const modelsDir = await mkdtemp(join(tmpdir(), 'slack-models-'));
  const config = loadConfig({
    REDIS_URL: inject('redisUrl'),
    QUEUE_PREFIX: `slack${process.pid}x${++prefixCounter}`,
    MODELS_DIR: modelsDir,
    PYTHON: join(REPO_ROOT, '.venv/bin/python'),
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_API_URL: double.apiUrl,
    ...env,
  });
  const connection = connectRedis(config.redisUrl!);
  const runner = await startRunner({ config, connection, stalledInterval: 1_000 });
  const bot = await createBot(config, connection);
  const slack = new SlackChat({ bot, ...config.slack! });
  await slack.start();
  return {
    config,
    bot,
    slack,
    runner,
    async stop() {
      await slack.stop();
      await bot.close();
      await runner.close();
      await closeRedis(connection);
      await rm(modelsDir, { recursive: true, force: true });
    },
  };
}

describe('Slack in Socket Mode', () => {
  const double = new SlackDouble();
  let stack: Stack;

  beforeAll(async () => {
    await double.start();
    double.userGroups.set('S0TRAINERS', [ADA.id]);
    stack = await startStack(double, { SLACK_APP_TOKEN: APP_TOKEN, ALLOW_TRAIN: 'group:S0TRAINERS' });
    await double.connected;
  });
  afterAll(async () => {
    await stack?.stop();
    await double.stop();
  });

  let job: SlackMessage;
  it('/train quick_test: acked within 3 s, one message updated with bands, the PNG in its thread, a mention', async () => {
    const envelope = double.slash('/train', 'quick_test', ADA);
    expect(await until('the ack', () => double.ackDelays.get(envelope))).toBeLessThan(3_000);
    job = await until('the job message', () => double.find(/^🧪 Training job \*\d+\*: \*quick_test\*/));
    await until('the loss curve', () => job.files.length > 0 && job, 120_000);
    const progress = job.history.filter((h) => /\[[█░]{20}\] \d+\/30 · loss \d+\.\d+ (⚠️|🟡|🎯|✅|🔴)/.test(h.text));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(job.text).toMatch(
      /\n✅ job \d+ done · final loss \d+\.\d{3} \S+ \w+ · eval loss \d+\.\d{3} \S+ \w+ · \d+:\d\d · model `tiny-gpt-oss_quick_test_\d{8}_\d{4}(-\d+)?` \(now latest\)$/,
    );
    // an edit notifies nobody: the requester is mentioned in a new message
    await until('the mention', () => double.find(/^<@U0ADA> job \d+ is done: `tiny-gpt-oss_quick_test_/));
    expect(job.files).toEqual([
      {
        name: expect.stringMatching(/^loss-curve-job-\d+\.png$/),
        title: expect.stringMatching(/^Loss curve of tiny-gpt-oss_quick_test_/),
        bytes: expect.any(Number),
        threadTs: job.ts,
      },
    ]);
    expect(job.files[0]!.bytes).toBeGreaterThan(500);
  });

  it('updates one message no more often than once every 1.5 s (chat.update is tier 3)', () => {
    const at = job.history.slice(1).map((h) => h.at);
    for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(1_450);
  });

  it('/chat opens a thread where every reply is a turn with the model', async () => {
    double.slash('/chat', 'latest', ADA);
    const intro = await until('the thread', () => double.find(/^🧵 Chat with latest$/));
    await until('the how-to', () =>
      [...double.messages.values()].find((m) => m.threadTs === intro.ts && /^🧵 chatting with \*latest\*/.test(m.text)),
    );
    double.message(intro.channel, ADA, 'Say hello to Ada.', intro.ts);
    const answer = await until(
      'the answer in the thread',
      () =>
        [...double.messages.values()].find(
          (m) => m.threadTs === intro.ts && /\n— tiny-gpt-oss_quick_test_\S+ · \d+ tokens/.test(m.text),
        ),
      60_000,
    );
    expect(answer.text).toMatch(/^🧵 \*latest\* · <@U0ADA>\n/); // Slack shows the person's name
    double.message(intro.channel, ADA, 'not in a chat thread');
    await new Promise((r) => setTimeout(r, 300));
    expect(
      [...double.messages.values()].filter((m) => m.threadTs === undefined && /not in a chat/.test(m.text)),
    ).toEqual([]);
  });

  it('/models list lists the model', async () => {
    double.slash('/models', 'list', EVE);
    const list = await until('the list', () => double.find(/^\*Models\*/));
    expect(list.text).toMatch(/→ `tiny-gpt-oss_quick_test_\d{8}_\d{4}(-\d+)?` · quick_test · .* · r=8 · latest/);
  });

  it('refuses /train to a user outside the group, privately, and queues nothing', async () => {
    const before = await stack.bot.queue.queue.getJobCounts('waiting', 'prioritized', 'active', 'completed');
    double.slash('/train', 'standard', EVE);
    const refusal = await until('the refusal', () =>
      double.ephemeral.find((e) => e.user === EVE.id && e.text.includes('ALLOW_TRAIN')),
    );
    expect(refusal.text).toBe('⚠️ you may not run /train standard here (ALLOW_TRAIN); ask whoever runs the bot');
    expect(await stack.bot.queue.queue.getJobCounts('waiting', 'prioritized', 'active', 'completed')).toEqual(before);
  });

  it('refuses a malformed option with a useful message and queues nothing', async () => {
    const before = await stack.bot.queue.queue.getJobCounts('waiting', 'prioritized', 'active', 'completed');
    double.slash('/train', 'standard scheduler=zigzag', ADA);
    const refusal = await until('the refusal', () =>
      double.ephemeral.find((e) => e.user === ADA.id && e.text.includes('zigzag')),
    );
    expect(refusal.text).toBe(
      "⚠️ unknown scheduler 'zigzag'; choose one of linear, cosine, constant, constant_with_warmup",
    );
    expect(await stack.bot.queue.queue.getJobCounts('waiting', 'prioritized', 'active', 'completed')).toEqual(before);
  });

  it('escapes what Slack would read as markup, and answers privately where it may not post', async () => {
    double.slash('/help', '', ADA);
    const help = await until('help', () => double.ephemeral.find((e) => e.text.includes('Commands')));
    expect(help.text).toContain('/train &lt;profile&gt;');
    expect(help.text).not.toMatch(/<profile>|<job>/);
    const before = await stack.bot.queue.queue.getJobCounts('waiting', 'prioritized', 'active', 'completed');
    double.slash('/train', 'quick_test', ADA, 'C0NOTMEMBER');
    const refusal = await until('the refusal', () => double.ephemeral.find((e) => e.channel === 'C0NOTMEMBER'));
    expect(refusal.text).toBe(
      '⚠️ I cannot post in this channel: invite me (/invite @&lt;bot name&gt;) or use a channel I am in',
    );
    // the job was taken back at once: removed while waiting, or stopped if a runner had taken it already
    const same = async () =>
      JSON.stringify(await stack.bot.queue.queue.getJobCounts('waiting', 'prioritized', 'active', 'completed')) ===
      JSON.stringify(before);
    await expect.poll(same, { timeout: 30_000 }).toBe(true);
  });

  it('sends both tokens only in headers, never in a message', () => {
    const texts = [
      ...[...double.messages.values()].flatMap((m) => m.history.map((h) => h.text)),
      ...double.ephemeral.map((e) => e.text),
    ];
    expect(texts.some((t) => t.includes(BOT_TOKEN) || t.includes(APP_TOKEN))).toBe(false);
    expect(double.calls.filter((c) => c.method === 'chat.update').every((c) => c.auth === `Bearer ${BOT_TOKEN}`)).toBe(
      true,
    );
    expect(double.calls.find((c) => c.method === 'apps.connections.open')?.auth).toBe(`Bearer ${APP_TOKEN}`);
  });
});

describe('Slack over HTTP with signed requests', () => {
  const double = new SlackDouble();
  let stack: Stack;
  let url: string;

  beforeAll(async () => {
    await double.start();
    const port = await freePort();
    stack = await startStack(double, {
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_MODE: 'http',
      SLACK_PORT: String(port),
      EMBEDDED_RUNNER: 'false',
    });
    url = `http://127.0.0.1:${port}/slack/events`;
  });
  afterAll(async () => {
    await stack?.stop();
    await double.stop();
  });

  const post = (body: string, signature: string, timestamp: number) =>
    fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': String(timestamp),
        'x-slack-signature': signature,
      },
      body,
    });
  const form = (text: string) =>
    new URLSearchParams(double.payload('/queue', text, ADA) as Record<string, string>).toString();

  it('runs a correctly signed slash command and acks it at once', async () => {
    const body = form('');
    const now = Math.floor(Date.now() / 1000);
    const t0 = performance.now();
    const res = await post(body, sign(SIGNING_SECRET, now, body), now);
    expect(res.status).toBe(200);
    expect(performance.now() - t0).toBeLessThan(3_000);
    await until('the answer', () => double.find(/^The queue is empty/));
  });

  it('rejects a bad signature and a stale one, and runs nothing', async () => {
    const body = form('');
    const now = Math.floor(Date.now() / 1000);
    const before = double.calls.filter((c) => c.method === 'chat.postMessage').length;
    expect((await post(body, sign('not-the-secret', now, body), now)).status).toBe(401);
    const stale = now - 10 * 60;
    expect((await post(body, sign(SIGNING_SECRET, stale, body), stale)).status).toBe(401);
    expect((await post(`${body}&text=tampered`, sign(SIGNING_SECRET, now, body), now)).status).toBe(401);
    await new Promise((r) => setTimeout(r, 300));
    expect(double.calls.filter((c) => c.method === 'chat.postMessage').length).toBe(before);
  });
});
