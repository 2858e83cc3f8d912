/**
 * The chat platforms, through the local protocol doubles of the tests (tests/helpers/*-double.ts):
 *  1. time from the platform's event to the defer (Discord) or ack (Slack), median and p99 over N commands, for a
 *     bare discord.js client / bare Bolt app that only defers / acks, and for our bot, side by side in one run;
 *  2. edits sent per progress message against the progress lines the trainer produced, over a real quick_test.
 *
 *   node --import tsx bench/platforms.ts [commands=1000]
 */
import { App, LogLevel, SocketModeReceiver } from '@slack/bolt';
import { Client, Events, GatewayIntentBits } from 'discord.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRunner } from '../gpu-runner/runner.ts';
import { createBot } from '../src/bot/bot.ts';
import { DiscordChat } from '../src/platforms/discord/index.ts';
import { SlackChat } from '../src/platforms/slack/index.ts';
import { loadConfig, REPO_ROOT } from '../src/shared/config.ts';
import { closeRedis, connectRedis, startEmbeddedRedis } from '../src/shared/redis.ts';
import { APP_ID, DiscordDouble, GUILD_ID } from '../tests/helpers/discord-double.ts';
import { APP_TOKEN, BOT_TOKEN, SlackDouble } from '../tests/helpers/slack-double.ts';
import { until } from '../tests/helpers/until.ts';

const N = Number(process.argv[2] ?? 1000);
const WARMUP = 20;
const USER = { id: '1600000000000000001', name: 'bench', roles: [] };
const DISCORD_TOKEN = 'bench-bot-token.not-a-real-one.xxxxxxxxxxxxxxxx';

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { median: at(0.5), p99: at(0.99) };
}
const fmt = (x: number) => x.toFixed(2).padStart(7);

/** Sends N commands one at a time; each waits for the previous one's answer to be complete. */
async function discordDelays(double: DiscordDouble): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < N + WARMUP; i++) {
    const { id, token } = double.slash('help', undefined, {}, USER);
    const delay = await until('the defer', () => double.answerDelayMs(id), 30_000, 0);
    await until('the answer', () => double.original(token)?.content, 30_000, 0);
    if (i >= WARMUP) out.push(delay);
  }
  return out;
}

async function slackDelays(double: SlackDouble, answered: () => number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < N + WARMUP; i++) {
    const before = answered();
    const envelope = double.slash('/help', '', USER);
    const delay = await until('the ack', () => double.ackDelays.get(envelope), 30_000, 0);
    await until('the answer', () => answered() > before, 30_000, 0);
    if (i >= WARMUP) out.push(delay);
  }
  return out;
}

const redis = await startEmbeddedRedis();
const modelsDir = await mkdtemp(join(tmpdir(), 'bench-platforms-'));
const lines: string[] = [];
try {
  // --- Discord: bare client, then our bot
  const dd = new DiscordDouble();
  await dd.start();
  const bare = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: dd.apiBase } });
  bare.on(Events.InteractionCreate, (i) => {
    if (i.isChatInputCommand()) void i.deferReply({ flags: 64 }).then(() => i.editReply('ok'));
  });
  await bare.login(DISCORD_TOKEN);
  await until('the bare client', () => bare.isReady(), 30_000, 0);
  const bareDiscord = stats(await discordDelays(dd));
  await bare.destroy();

  const config = loadConfig({
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'benchplatforms',
    MODELS_DIR: modelsDir,
    PYTHON: join(REPO_ROOT, '.venv/bin/python'),
  });
  const connection = connectRedis(redis.url);
  const bot = await createBot(config, connection);
  const ourDiscord = new DiscordChat({
    bot,
    token: DISCORD_TOKEN,
    applicationId: APP_ID,
    guildId: GUILD_ID,
    apiBase: dd.apiBase,
  });
  await ourDiscord.start();
  const oursDiscord = stats(await discordDelays(dd));

  // --- Slack: bare Bolt app, then our bot
  const sd = new SlackDouble();
  await sd.start();
  const bareApp = new App({
    token: BOT_TOKEN,
    receiver: new SocketModeReceiver({
      appToken: APP_TOKEN,
      installerOptions: { clientOptions: { slackApiUrl: sd.apiUrl } },
      logLevel: LogLevel.ERROR,
    }),
    clientOptions: { slackApiUrl: sd.apiUrl },
    logLevel: LogLevel.ERROR,
  });
  let bareAnswers = 0;
  bareApp.command('/help', async ({ ack, client, command }) => {
    await ack();
    await client.chat.postEphemeral({ channel: command.channel_id, user: command.user_id, text: 'ok' });
    bareAnswers++;
  });
  await bareApp.start();
  await sd.connected;
  const bareSlack = stats(await slackDelays(sd, () => bareAnswers));
  await bareApp.stop();

  const sd2 = new SlackDouble();
  await sd2.start();
  const ourSlack = new SlackChat({ bot, botToken: BOT_TOKEN, mode: 'socket', appToken: APP_TOKEN, apiUrl: sd2.apiUrl });
  await ourSlack.start();
  await sd2.connected;
  const oursSlack = stats(await slackDelays(sd2, () => sd2.ephemeral.length));

  lines.push(
    `event to defer/ack through the local doubles, ${N} commands each, one at a time (${cpus().length} × ${cpus()[0]?.model})`,
  );
  lines.push('                          median     p99  (ms)');
  lines.push(`bare discord.js client   ${fmt(bareDiscord.median)} ${fmt(bareDiscord.p99)}`);
  lines.push(
    `our bot on Discord       ${fmt(oursDiscord.median)} ${fmt(oursDiscord.p99)}   ratio ${fmt(oursDiscord.median / bareDiscord.median)} ${fmt(oursDiscord.p99 / bareDiscord.p99)}`,
  );
  lines.push(`bare Bolt app            ${fmt(bareSlack.median)} ${fmt(bareSlack.p99)}`);
  lines.push(
    `our bot on Slack         ${fmt(oursSlack.median)} ${fmt(oursSlack.p99)}   ratio ${fmt(oursSlack.median / bareSlack.median)} ${fmt(oursSlack.p99 / bareSlack.p99)}`,
  );

  // --- edits per progress message over a real quick_test on each platform
  const runnerConn = connectRedis(redis.url);
  const runner = await startRunner({ config, connection: runnerConn });
  const { token } = dd.slash('train', 'quick_test', {}, { ...USER });
  const dMsg = await until(
    'the Discord run',
    () => {
      const m = dd.original(token);
      return m && m.files.length > 0 && m;
    },
    120_000,
    50,
  );
  sd2.slash('/train', 'quick_test', USER);
  const sMsg = await until(
    'the Slack run',
    () => {
      const m = sd2.find(/^🧪 Training job/);
      return m && m.files.length > 0 && m;
    },
    120_000,
    50,
  );
  const steps = (h: { text?: string; content?: string }[]) =>
    h.filter((x) => /\d+\/30 · loss/.test(x.text ?? x.content ?? '')).length;
  lines.push('');
  lines.push('edits per progress message over a quick_test (30 progress lines from the trainer)');
  lines.push(
    `Discord (1 edit/s)    ${dMsg.history.length - 1} edits, ${steps(dMsg.history)} of them progress, over ${((dMsg.history.at(-1)!.at - dMsg.history[0]!.at) / 1000).toFixed(1)} s`,
  );
  lines.push(
    `Slack (1 edit/1.5 s)  ${sMsg.history.length - 1} edits, ${steps(sMsg.history)} of them progress, over ${((sMsg.history.at(-1)!.at - sMsg.history[0]!.at) / 1000).toFixed(1)} s`,
  );
  await runner.close();
  await closeRedis(runnerConn);

  await ourSlack.stop();
  await ourDiscord.stop();
  await bot.close();
  await closeRedis(connection);
  await sd.stop();
  await sd2.stop();
  await dd.stop();
  console.log(lines.join('\n'));
} finally {
  await redis.stop();
  await rm(modelsDir, { recursive: true, force: true });
}
process.exit(0);
