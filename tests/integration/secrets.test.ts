/**
 * No secret in any log line or any message. The bot runs as `npm start` runs it (its own process; everything it
 * writes to stdout and stderr is kept), serving Discord and Slack over HTTP against the doubles, with a Redis of this
 * test's own that wants a password, and a trainer that fails. It goes through commands that work, commands that are
 * refused, unsigned requests, a failed run and an ask, and then the queue going away; every log line, every request
 * the doubles got and every message they hold is searched for each secret, and so is what the trainer could read.
 */
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/shared/config.ts';
import { freePort, pingRedis } from '../../src/shared/redis.ts';
import { APP_ID, DiscordDouble, GUILD_ID } from '../helpers/discord-double.ts';
import { SlackDouble, sign } from '../helpers/slack-double.ts';
import { until } from '../helpers/until.ts';

const hex = () => randomBytes(6).toString('hex');
const DISCORD_TOKEN = `discord-secret-${hex()}.token-value`;
const SLACK_BOT_TOKEN = `xoxb-secret-${hex()}`;
const SIGNING_SECRET = `signing-secret-${hex()}`;
/** Characters that a URL must encode, so both spellings of it are looked for. */
const REDIS_PASSWORD = `pw/${hex()}@x:y%z`;
const SECRETS = {
  DISCORD_TOKEN,
  SLACK_BOT_TOKEN,
  SIGNING_SECRET,
  REDIS_PASSWORD,
  'REDIS_PASSWORD (URL-encoded)': encodeURIComponent(REDIS_PASSWORD),
};
const ADA = { id: '1600000000000000001', name: 'ada' };
const SLACK_ADA = { id: 'U0ADA', name: 'ada' };

/** A redis-server of this test's own that wants a password (the embedded one in src/shared/redis.ts has none). */
async function startRedisWithPassword(
  dir: string,
  port?: number,
): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  port ??= await freePort();
  const child = execa(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--requirepass',
      REDIS_PASSWORD,
    ],
    {
      reject: false,
      stdin: 'ignore',
      buffer: false,
      cleanup: true,
    },
  );
  const url = `redis://:${encodeURIComponent(REDIS_PASSWORD)}@127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  while (!(await pingRedis(url))) {
    if (Date.now() > deadline) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(await pingRedis(`redis://127.0.0.1:${port}`)).toBe(false); // it really wants the password
  return { url, port, stop: async () => void (child.kill('SIGTERM'), await child) };
}

/**
 * Stands in for Python: as the trainer it fails the way a real crash does; as the inference worker it dies before it
 * is ready. Either way it first writes down the environment it was given, which is what a trainer could print.
 */
function failingPython(dir: string): string {
  const path = join(dir, 'python');
  writeFileSync(
    path,
    `#!/bin/sh\nenv > "${dir}/env-$$.txt"\necho "Traceback (most recent call last):" >&2\necho "RuntimeError: could not load the base model" >&2\nexit 1\n`,
    { mode: 0o755 },
  );
  return path;
}

describe('secrets', () => {
  const discord = new DiscordDouble();
  const slack = new SlackDouble();
  let dir: string;
  let redis: Awaited<ReturnType<typeof startRedisWithPassword>>;
  let bot: ResultPromise;
  let log = '';
  let slackUrl: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secrets-'));
    mkdirSync(join(dir, 'models'));
    await Promise.all([discord.start(), slack.start()]);
    redis = await startRedisWithPassword(dir);
    const port = await freePort();
    slackUrl = `http://127.0.0.1:${port}/slack/events`;
    bot = execa('node', ['--import', 'tsx', 'src/main.ts'], {
      cwd: REPO_ROOT,
      extendEnv: false,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        REDIS_URL: redis.url,
        QUEUE_PREFIX: `secrets${process.pid}`,
        EMBEDDED_RUNNER: 'true',
        MODELS_DIR: join(dir, 'models'),
        PYTHON: failingPython(dir),
        LOG_LEVEL: 'debug',
        PROGRESS_EDIT_INTERVAL_MS: '100',
        DISCORD_TOKEN,
        DISCORD_APPLICATION_ID: APP_ID,
        DISCORD_GUILD_ID: GUILD_ID,
        DISCORD_API_BASE: discord.apiBase,
        SLACK_BOT_TOKEN,
        SLACK_SIGNING_SECRET: SIGNING_SECRET,
        SLACK_MODE: 'http',
        SLACK_PORT: String(port),
        SLACK_API_URL: slack.apiUrl,
      },
      reject: false,
      stdin: 'ignore',
      all: true,
      forceKillAfterDelay: false,
    });
    bot.all!.on('data', (d: Buffer) => (log += d.toString()));
    await until(
      'the bot to serve both platforms',
      () => /serving discord and slack/.test(log) || bot.exitCode !== null,
      60_000,
    );
    expect(log).toMatch(/serving discord and slack/);
  });

  afterAll(async () => {
    if (bot && bot.exitCode === null) bot.kill('SIGKILL');
    await bot?.catch(() => undefined);
    await redis?.stop().catch(() => undefined);
    await Promise.all([discord.stop(), slack.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  const slackPost = (text: string, command: string, sign_ = true) => {
    const body = new URLSearchParams(slack.payload(command, text, SLACK_ADA) as Record<string, string>).toString();
    const now = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (sign_)
      Object.assign(headers, {
        'x-slack-request-timestamp': String(now),
        'x-slack-signature': sign(SIGNING_SECRET, now, body),
      });
    return fetch(slackUrl, { method: 'POST', headers, body });
  };
  const discordAnswer = (token: string, pattern: RegExp, timeoutMs = 15_000) =>
    until(
      `a Discord answer matching ${pattern}`,
      () => discord.messagesOf(token).find((m) => pattern.test(m.content)),
      timeoutMs,
    );
  const slackAnswer = (pattern: RegExp, timeoutMs = 15_000) =>
    until(
      `a Slack answer matching ${pattern}`,
      () =>
        slack.ephemeral.find((e) => pattern.test(e.text)) ??
        [...slack.messages.values()].find((m) => pattern.test(m.text)),
      timeoutMs,
    );

  it('works, refuses and fails through both platforms', async () => {
    // what works
    await discordAnswer(discord.slash('help', undefined, {}, ADA).token, /Commands/);
    await discordAnswer(discord.slash('queue', undefined, {}, ADA).token, /The queue is empty/);
    expect((await slackPost('', '/help')).status).toBe(200);
    await slackAnswer(/Commands/);
    // what is refused
    await discordAnswer(discord.slash('train', 'standard', { r: 999 }, ADA).token, /^⚠️ r must be a whole number/);
    await discordAnswer(
      discord.slash('models', 'info', { name: '../../etc/passwd' }, ADA).token,
      /^⚠️ a model is named by its folder name/,
    );
    expect((await slackPost('standard r=abc', '/train')).status).toBe(200);
    await slackAnswer(/^⚠️ r must be a whole number/);
    expect((await slackPost('', '/queue', false)).status).toBe(401);
    // a run whose trainer fails, and an ask whose worker dies
    const run = discord.slash('train', 'quick_test', {}, ADA);
    await discordAnswer(
      run.token,
      /❌ job \d+ failed: the trainer exited with code 1: RuntimeError: could not load the base model/,
      60_000,
    );
    expect((await slackPost('quick_test', '/train')).status).toBe(200);
    await slackAnswer(/❌ job \d+ failed: the trainer exited with code 1/, 60_000);
    await discordAnswer(
      discord.slash('ask', undefined, { model: 'base', prompt: 'hello' }, ADA).token,
      /^💬 \*\*base\*\* · ada asked: hello\n⚠️/,
      60_000,
    );
  });

  it('says the queue is unavailable once its Redis is gone', async () => {
    await redis.stop();
    await discordAnswer(
      discord.slash('train', 'quick_test', {}, ADA).token,
      /^⚠️ the job queue is unavailable right now/,
    );
    expect((await slackPost('', '/queue')).status).toBe(200);
    await slackAnswer(/^⚠️ the job queue is unavailable right now/);
    await until('the log to tell of the lost connection', () => /connection problem/.test(log), 15_000);
  });

  it('goes on once Redis is back, and says nothing secret on the way out', async () => {
    redis = await startRedisWithPassword(dir, redis.port);
    // What a user does after "unavailable; try again": try again. The bot holds several connections, which come back
    // one by one (ioredis's backoff): the answer, not a log line, says when it serves again.
    await until(
      "Discord's /queue to answer with the queue again",
      async () => {
        const answer = await discordAnswer(
          discord.slash('queue', undefined, {}, ADA).token,
          /^(⚠️ the job queue is unavailable|The queue is empty)/,
        );
        return /^The queue is empty/.test(answer.content) || (await new Promise((r) => setTimeout(r, 500)), false);
      },
      30_000,
    );
    // The outage in the log, as an operator reads it: one line when it began, one when it was over, no stack trace
    // (the bot and its runner hold a dozen connections, each retrying on its own)
    await until('the log to say the connection is back', () => /\[redis\] connection is back after/.test(log), 15_000);
    const outage = log.slice(log.indexOf('[redis] connection problem'));
    expect(outage.match(/\[redis\] connection problem/g)).toHaveLength(1);
    expect(outage.match(/\[redis\] connection is back after [\d.]+ s \(\d+ failed attempts\)/g)).toHaveLength(1);
    expect(outage).not.toMatch(/^\s+at /m);
    // What shutting down logs is searched too. After a Redis outage BullMQ's close() can wait forever: the bot's own
    // shutdown deadline (10 s) ends the process anyway.
    bot.kill('SIGTERM');
    const ended = await Promise.race([
      bot.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 20_000)),
    ]);
    if (!ended) bot.kill('SIGKILL');
    expect(ended).toBe(true);
  });

  it('shows no secret in any log line', () => {
    // the log holds what happened (so an empty capture cannot pass): the failed run, its trainer's stderr, the lost Redis
    expect(log).toMatch(/\[runner\] job \d+: failed: the trainer exited with code 1/);
    expect(log).toMatch(/\[redis\] connection problem/);
    expect(log).toMatch(/\[trainer\] RuntimeError: could not load the base model/); // the trainer's stderr, at debug
    // no error was printed past the log (and its redaction), as console.error prints one: with its fields
    expect(log).not.toMatch(/^\s+errno: /m);
    for (const [name, secret] of Object.entries(SECRETS))
      expect(log.includes(secret), `${name} in the log`).toBe(false);
  });

  it('shows no secret in any message or request body the platforms got', () => {
    const discordSeen = JSON.stringify([
      discord.requests.map((r) => ({ path: r.path, body: r.body })),
      [...discord.messages.values()].map((m) => m.history),
    ]);
    // Bolt checks its token with auth.test, which takes it as an argument: a credential to its own API, not a message
    const slackCredentials = slack.calls
      .filter((c) => c.args.token !== undefined)
      .map((c) => `${c.method} ${c.args.token}`);
    expect(new Set(slackCredentials)).toEqual(new Set([`auth.test ${SLACK_BOT_TOKEN}`]));
    const slackArgs = slack.calls.map(({ args: { token: _token, ...rest } }) => rest);
    const slackSeen = JSON.stringify([slackArgs, slack.ephemeral, [...slack.messages.values()].map((m) => m.history)]);
    expect(discordSeen).toMatch(/❌ job \d+ failed/);
    expect(slackSeen).toMatch(/❌ job \d+ failed/);
    for (const [name, secret] of Object.entries(SECRETS)) {
      expect(discordSeen.includes(secret), `${name} sent to Discord`).toBe(false);
      expect(slackSeen.includes(secret), `${name} sent to Slack`).toBe(false);
    }
    // each token goes only to its own platform, and only as its credentials
    expect(new Set(discord.requests.filter((r) => r.auth).map((r) => r.auth))).toEqual(
      new Set([`Bot ${DISCORD_TOKEN}`]),
    );
    expect(new Set(slack.calls.filter((c) => c.auth).map((c) => c.auth))).toEqual(
      new Set([`Bearer ${SLACK_BOT_TOKEN}`]),
    );
  });

  it('gives the trainer and the inference worker none of the secrets', () => {
    const dumps = readdirSync(dir).filter((f) => /^env-\d+\.txt$/.test(f));
    expect(dumps.length).toBeGreaterThanOrEqual(2); // the trainer's, the worker's
    for (const f of dumps) {
      const env = readFileSync(join(dir, f), 'utf8');
      expect(env).toMatch(/^PYTHONUNBUFFERED=1$/m);
      for (const [name, secret] of Object.entries(SECRETS))
        expect(env.includes(secret), `${name} in the environment of ${f}`).toBe(false);
    }
  });
});
