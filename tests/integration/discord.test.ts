/**
 * The real discord.js client against a local stand-in for Discord's gateway and REST API (tests/helpers/
 * discord-double.ts replaces Discord's servers), with the real queue, runner and trainer behind it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from '../helpers/until.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { startRunner, type Runner } from '../../gpu-runner/runner.ts';
import { createBot, type Bot } from '../../src/bot/bot.ts';
import { DiscordChat } from '../../src/platforms/discord/index.ts';
import { loadConfig, REPO_ROOT, type Config } from '../../src/shared/config.ts';
import { closeRedis, connectRedis, startEmbeddedRedis } from '../../src/shared/redis.ts';
import { SlackChat } from '../../src/platforms/slack/index.ts';
import { APP_ID, CHANNEL_ID, DiscordDouble, GUILD_ID, type DoubleMessage } from '../helpers/discord-double.ts';
import { APP_TOKEN, BOT_TOKEN, SlackDouble } from '../helpers/slack-double.ts';

const TOKEN = 'test-bot-token.not-a-real-one.xxxxxxxxxxxxxxxx';
const ADA = { id: '1600000000000000001', name: 'ada', roles: ['1700000000000000001'] };
const EVE = { id: '1600000000000000002', name: 'eve', roles: [] };

let prefixCounter = 0;

interface Stack {
  config: Config;
  bot: Bot;
  discord: DiscordChat;
  stop(): Promise<void>;
}

async function startBot(
  double: DiscordDouble,
  env: Record<string, string>,
  modelsDir: string,
  tokenTtlMs?: number,
): Promise<Stack> {
  const config = loadConfig({
    REDIS_URL: env.REDIS_URL ?? inject('redisUrl'),
    MODELS_DIR: modelsDir,
    PYTHON: join(REPO_ROOT, '.venv/bin/python'),
    DISCORD_TOKEN: TOKEN,
    DISCORD_APPLICATION_ID: APP_ID,
    DISCORD_GUILD_ID: GUILD_ID,
    DISCORD_API_BASE: double.apiBase,
    ...env,
  });
  const connection = connectRedis(config.redisUrl!);
  const bot = await createBot(config, connection);
  // Slack beside it in the same process, as when both platforms' tokens are set, and first to make a request: its
  // libraries must not break Discord's (a newer undici then owns the process-wide HTTP dispatcher)
  const slackDouble = new SlackDouble();
  await slackDouble.start();
  const slack = new SlackChat({
    bot,
    botToken: BOT_TOKEN,
    mode: 'socket',
    appToken: APP_TOKEN,
    apiUrl: slackDouble.apiUrl,
  });
  await slack.start();
  const discord = new DiscordChat({
    bot,
    token: TOKEN,
    applicationId: APP_ID,
    guildId: GUILD_ID,
    apiBase: double.apiBase,
    interactionTokenTtlMs: tokenTtlMs,
    chatThreads: config.discord!.chatThreads,
  });
  await discord.start();
  return {
    config,
    bot,
    discord,
    async stop() {
      await slack.stop();
      await slackDouble.stop();
      await discord.stop();
      await bot.close();
      await closeRedis(connection);
    },
  };
}

async function startRunnerFor(config: Config): Promise<{ runner: Runner; stop(): Promise<void> }> {
  const connection = connectRedis(config.redisUrl!);
  const runner = await startRunner({ config, connection, stalledInterval: 1_000 });
  return { runner, stop: async () => (await runner.close(), await closeRedis(connection)) };
}

describe('Discord', () => {
  const double = new DiscordDouble();
  let modelsDir: string;
  let stack: Stack;
  let runner: { stop(): Promise<void> };
  const env = () => ({
    QUEUE_PREFIX: `discord${process.pid}x${prefixCounter}`,
    ALLOW_TRAIN: `role:${ADA.roles[0]}`,
    DISCORD_CHAT_THREADS: 'true',
  });

  beforeAll(async () => {
    prefixCounter++;
    await double.start();
    modelsDir = await mkdtemp(join(tmpdir(), 'discord-models-'));
    stack = await startBot(double, env(), modelsDir);
    runner = await startRunnerFor(stack.config);
  });
  afterAll(async () => {
    await stack?.stop();
    await runner?.stop();
    await double.stop();
    await rm(modelsDir, { recursive: true, force: true });
  });

  it('registers its commands once, with the profiles as subcommands of /train, and not again when nothing changed', async () => {
    expect(double.commandPuts).toBe(1);
    const train = double.commands.find((c) => c.name === 'train');
    expect(train.options.map((o: any) => o.name)).toEqual([
      'quick_test',
      'standard',
      'full',
      'max_quality',
      'conservative',
      'status',
      'cancel',
    ]);
    const standard = train.options.find((o: any) => o.name === 'standard');
    expect(standard.options).toEqual([
      expect.objectContaining({ name: 'r', type: 4, min_value: 1, max_value: 256, required: false }),
      expect.objectContaining({
        name: 'scheduler',
        type: 3,
        choices: expect.arrayContaining([{ name: 'cosine', value: 'cosine' }]),
      }),
      expect.objectContaining({ name: 'host', type: 3, required: false }),
      expect.objectContaining({ name: 'gpu', type: 3, required: false }),
    ]);
    const again = await startBot(double, env(), modelsDir);
    await again.stop();
    expect(double.commandPuts).toBe(1);
  });

  let model: DoubleMessage;
  it('/train quick_test: deferred within 3 s, then one message edited with bands, ending with the PNG and a mention', async () => {
    const { id, token } = double.slash('train', 'quick_test', {}, ADA);
    const delay = await until('the defer', () => double.answerDelayMs(id));
    expect(delay).toBeLessThan(3_000);
    expect(double.callbacks.get(id)).toMatchObject({ type: 5, flags: 0 });
    const msg = await until(
      'the final message',
      () => {
        const m = double.original(token);
        return m && m.files.length > 0 && m;
      },
      120_000,
    );
    model = msg;
    const contents = msg.history.map((h) => h.content);
    expect(contents[1]).toMatch(
      /^🧪 Training job \*\*\d+\*\*: \*\*quick_test\*\* · 30 steps · 100 examples · for ada\n/,
    );
    const progress = contents.filter((c) => /\[[█░]{20}\] \d+\/30 · loss \d+\.\d+ (⚠️|🟡|🎯|✅|🔴)/.test(c));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(msg.content).toMatch(
      /\n✅ job \d+ done · final loss \d+\.\d{3} \S+ \w+ · eval loss \d+\.\d{3} \S+ \w+ · \d+:\d\d · model `tiny-gpt-oss_quick_test_\d{8}_\d{4}(-\d+)?` \(now latest\)$/,
    );
    expect(msg.history.slice(1).every((h) => h.via === 'webhook')).toBe(true); // the token was fresh all along
    // an edit notifies nobody: the requester is mentioned in a new message that may ping them alone
    const ping = await until('the mention', () =>
      double.requests.find(
        (r) =>
          r.method === 'POST' &&
          r.path === `/channels/${msg.channelId}/messages` &&
          /^<@1600000000000000001> job \d+ is done/.test(r.body.content),
      ),
    );
    expect(ping.body.allowed_mentions).toEqual({ parse: [], users: ['1600000000000000001'] });
    expect(msg.files[0]!.name).toMatch(/^loss-curve-job-\d+\.png$/);
    expect(msg.files[0]!.data.subarray(1, 4).toString()).toBe('PNG');
  });

  it('never edits one message more often than about once a second', () => {
    const edits = model.history.slice(1).map((h) => h.at);
    for (let i = 1; i < edits.length; i++) expect(edits[i]! - edits[i - 1]!).toBeGreaterThanOrEqual(950);
  });

  it('/models list lists the model, and model names autocomplete', async () => {
    const { token } = double.slash('models', 'list', {}, EVE);
    const list = await until(
      'the list',
      () => double.original(token)?.content.includes('Models') && double.original(token),
    );
    expect(list.content).toMatch(/→ `tiny-gpt-oss_quick_test_\d{8}_\d{4}(-\d+)?` · quick_test · .* · r=8 · latest/);
    const { id } = double.autocomplete('models', 'info', 'name', 'quick', EVE);
    await until('the autocomplete answer', () => double.callbacks.get(id));
    const answer = double.requests.find((r) => r.path.startsWith(`/interactions/${id}/`));
    expect(answer?.body).toMatchObject({
      type: 8,
      data: { choices: [expect.objectContaining({ value: expect.stringMatching(/^tiny-gpt-oss_quick_test_/) })] },
    });
  });

  it('/ask answers from the new model in one message that ends with who answered', async () => {
    const { id, token } = double.slash(
      'ask',
      undefined,
      { model: 'latest', prompt: 'What is the capital of France?' },
      EVE,
    );
    expect(await until('the defer', () => double.answerDelayMs(id))).toBeLessThan(3_000);
    const answer = await until(
      'the answer',
      () =>
        /\n— tiny-gpt-oss_quick_test_\S+ · \d+ tokens/.test(double.original(token)?.content ?? '') &&
        double.original(token),
      120_000,
    );
    expect(answer.content).toMatch(/^💬 \*\*latest\*\* · eve asked: What is the capital of France\?\n/);
    expect(answer.content).not.toContain('<|');
  });

  it('/chat starts a thread where every message is a turn with the model', async () => {
    const { token } = double.slash('chat', undefined, { model: 'latest' }, EVE);
    const intro = await until(
      'the intro',
      () => double.original(token)?.content === '🧵 Chat with latest' && double.original(token),
    );
    const threadId = await until(
      'the thread',
      () => [...double.threads.entries()].find(([, name]) => name === 'Chat with latest')?.[0],
    );
    expect(intro.channelId).toBe(CHANNEL_ID);
    await until('the how-to', () =>
      [...double.messages.values()].find(
        (m) => m.channelId === threadId && m.content.startsWith('🧵 chatting with **latest**'),
      ),
    );
    double.message(threadId, EVE, 'Say hello to Eve.');
    const answer = await until(
      'the answer',
      () =>
        [...double.messages.values()].find(
          (m) => m.channelId === threadId && /\n— tiny-gpt-oss_quick_test_\S+ · \d+ tokens/.test(m.content),
        ),
      60_000,
    );
    expect(answer.content).toMatch(/^🧵 \*\*latest\*\* · eve\n/);
    double.message(CHANNEL_ID, EVE, 'a message outside any chat thread');
    await new Promise((r) => setTimeout(r, 300));
    expect(
      [...double.messages.values()].filter(
        (m) => m.channelId === CHANNEL_ID && m.content.includes('🧵 **latest** · eve'),
      ),
    ).toEqual([]);
  });

  it('refuses /train to a user without the role, privately, and queues nothing', async () => {
    const before = await stack.bot.queue.queue.getJobCounts('waiting', 'prioritized', 'active', 'completed');
    const { token } = double.slash('train', 'standard', {}, EVE);
    const refusal = await until('the refusal', () => double.messagesOf(token).find((m) => m.flags === 64));
    expect(refusal.content).toBe('⚠️ you may not run /train standard here (ALLOW_TRAIN); ask whoever runs the bot');
    expect(double.original(token)).toBeUndefined(); // the public "thinking…" was deleted
    expect(await stack.bot.queue.queue.getJobCounts('waiting', 'prioritized', 'active', 'completed')).toEqual(before);
  });

  it('refuses a malformed option with a useful message and queues nothing', async () => {
    const before = await stack.bot.queue.queue.getJobCounts('waiting', 'prioritized', 'active', 'completed');
    const { token } = double.slash('train', 'standard', { r: 999, scheduler: 'zigzag' }, ADA);
    const refusal = await until('the refusal', () => double.messagesOf(token).find((m) => m.flags === 64));
    expect(refusal.content).toBe('⚠️ r must be a whole number from 1 to 256');
    expect(await stack.bot.queue.queue.getJobCounts('waiting', 'prioritized', 'active', 'completed')).toEqual(before);
  });

  it('/help lists only what the caller may run', async () => {
    const { id, token } = double.slash('help', undefined, {}, EVE);
    const help = await until(
      'help',
      () => double.original(token)?.content.includes('Commands') && double.original(token),
    );
    expect(double.callbacks.get(id)?.flags).toBe(64);
    expect(help.content).not.toContain('quick_test');
    expect(help.content).toContain('/models list');
  });

  it('keeps editing through the bot’s channel message once the interaction token has expired, and after a bot restart', async () => {
    const { token } = double.slash('train', 'standard', {}, ADA);
    const msg = await until(
      'progress',
      () => {
        const m = double.original(token);
        return m?.history.some((h) => /\d+\/200/.test(h.content)) && m;
      },
      60_000,
    );
    // while the interaction token is good, progress goes through its webhook
    expect(msg.history.filter((h) => /\d+\/200/.test(h.content)).every((h) => h.via === 'webhook')).toBe(true);
    double.expiredTokens.add(token);
    await until('an edit through the channel', () =>
      msg.history.some((h) => h.via === 'channel' && /\d+\/200/.test(h.content)),
    );
    // the bot restarts: a new process knows nothing of the interaction, only the message id stored with the job
    await stack.stop();
    const restartedAt = msg.history.length;
    stack = await startBot(double, env(), modelsDir);
    const jobId = /job \*\*(\d+)\*\*/.exec(msg.content)![1]!;
    await until('an edit by the restarted bot', () => msg.history.length > restartedAt + 1);
    expect(msg.history.slice(restartedAt).every((h) => h.via === 'channel')).toBe(true);
    const botAuth = double.requests.filter(
      (r) => r.method === 'PATCH' && r.path === `/channels/${msg.channelId}/messages/${msg.id}`,
    );
    expect(botAuth.length).toBeGreaterThan(0);
    expect(botAuth.every((r) => r.auth === `Bot ${TOKEN}`)).toBe(true);
    await stack.bot.queue.cancel(jobId, 'test');
    await until('the cancelled line', () => /🛑 job \d+ cancelled by test/.test(msg.content), 30_000);
  });

  it('sends the bot token only as the Authorization of its own requests, and never in a message', () => {
    expect(double.requests.filter((r) => r.path.startsWith('/channels/')).every((r) => r.auth === `Bot ${TOKEN}`)).toBe(
      true,
    );
    expect(
      double.requests
        .filter((r) => r.path.startsWith('/webhooks/') || r.path.startsWith('/interactions/'))
        .every((r) => r.auth === undefined),
    ).toBe(true);
    for (const m of double.messages.values()) expect(m.history.some((h) => h.content.includes(TOKEN))).toBe(false);
  });
});

describe('Discord with Redis not answering', () => {
  it('still defers within 3 s, then says the queue is unavailable, privately', async () => {
    const double = new DiscordDouble();
    await double.start();
    const redis = await startEmbeddedRedis();
    const modelsDir = await mkdtemp(join(tmpdir(), 'discord-models-'));
    const stack = await startBot(double, { REDIS_URL: redis.url, QUEUE_PREFIX: 'slowredis' }, modelsDir);
    process.kill(redis.pid!, 'SIGSTOP'); // Redis hangs: no answer, no error
    try {
      const { id, token } = double.slash('train', 'quick_test', {}, ADA);
      expect(await until('the defer', () => double.answerDelayMs(id))).toBeLessThan(3_000);
      const answer = await until('the answer', () => double.messagesOf(token).find((m) => m.flags === 64), 15_000);
      expect(answer.content).toBe('⚠️ the job queue is unavailable right now; try again in a minute');
    } finally {
      process.kill(redis.pid!, 'SIGCONT');
      await stack.stop();
      await redis.stop();
      await double.stop();
      await rm(modelsDir, { recursive: true, force: true });
    }
  });
});
