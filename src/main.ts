/**
 * The bot. It serves Discord when DISCORD_TOKEN is set (and Slack when its tokens are); with no platform token it runs
 * the embedded default: the console adapter on this terminal, a Redis of its own, the GPU runner on the CPU backend
 * and a tiny gpt-oss built on first use.
 *
 *   npm start                       # type /help
 *   printf '/train quick_test\n' | npm start --silent   # scripted: waits for the job, then exits
 */
import { startApp, type App } from './app.ts';
import { resumeMessages } from './bot/bot.ts';
import { ConsoleChat } from './platforms/console.ts';
import { startPlatforms } from './platforms/index.ts';
import { loadConfigForCli, type Config } from './shared/config.ts';
import { logger } from './shared/log.ts';
import { EmbeddedRedisError } from './shared/redis.ts';

const log = logger('main');
const SHUTDOWN_DEADLINE_MS = 10_000;

async function main(): Promise<number> {
  const config = loadConfigForCli('warn');
  if (!config) return 2;
  const app = await startApp(config);
  const platforms = await startPlatforms(app.bot, config);
  if (platforms.length === 0) return runConsole(config, app);

  log.info(`serving ${platforms.map((p) => p.platform).join(' and ')}`);
  await new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  // Jobs stay queued in Redis: a bot that comes back goes on editing their messages. Closing BullMQ's connections
  // can wait forever on a Redis that is gone: past the deadline the bot exits anyway, losing nothing.
  const stopped = (async () => {
    for (const p of platforms) await p.stop().catch((e) => log.warn(`stopping ${p.platform}`, e));
    await app.stop();
    return 0;
  })();
  const deadline = new Promise<number>((resolve) =>
    setTimeout(() => {
      log.warn(`not stopped after ${SHUTDOWN_DEADLINE_MS / 1000} s (is Redis gone?): exiting anyway`);
      resolve(1);
    }, SHUTDOWN_DEADLINE_MS).unref(),
  );
  return Promise.race([stopped, deadline]);
}

/** The console: reads commands until the end of input (then waits for its jobs) or Ctrl-C (then cancels them). */
async function runConsole(config: Config, app: App): Promise<number> {
  const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const chat = new ConsoleChat({
    bot: app.bot,
    input: process.stdin,
    output: process.stdout,
    tty,
    echo: !process.stdin.isTTY,
    user: config.consoleUser,
  });
  if (tty)
    process.stdout.write(
      `gpt-oss chatops bot, console mode (runner: ${app.runner?.name ?? 'external'}). Type /help; Ctrl-D quits.\n`,
    );
  // jobs and asks that an earlier console started: their progress and the ends it missed, as new lines
  await resumeMessages(app.bot, chat);

  let interrupts = 0;
  const cancelQueued = async () => {
    for (const id of app.bot.watcher.following) {
      await app.bot.queue.cancel(id, config.consoleUser).catch((e) => log.warn(`could not cancel job ${id}`, e));
    }
  };
  process.on('SIGINT', () => {
    interrupts++;
    if (interrupts > 1) {
      process.stderr.write('\nforced exit\n');
      process.exit(130);
    }
    process.stderr.write('\ncancelling the jobs queued here; Ctrl-C again to force quit\n');
    chat.interrupt();
    void cancelQueued();
  });
  process.on('SIGTERM', () => {
    chat.interrupt();
    void cancelQueued();
  });

  const end = await chat.run();
  if (end === 'eof' && app.bot.watcher.following.length > 0) {
    log.info(`waiting for ${app.bot.watcher.following.length} job(s) queued here`);
  }
  if (end === 'interrupt') {
    // The runner stops a cancelled trainer within its grace time; don't wait forever if the queue is gone.
    const limit = config.trainerKillGraceMs + 15_000;
    await Promise.race([app.bot.watcher.settled(), new Promise((r) => setTimeout(r, limit))]);
  } else {
    await app.bot.watcher.settled();
  }
  await app.bot.asks.settled();
  await app.stop();
  return interrupts > 0 || end === 'interrupt' ? 130 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    if (e instanceof EmbeddedRedisError) process.stderr.write(`${e.message}\n`);
    else log.error('the bot could not start', e);
    process.exit(1);
  },
);
