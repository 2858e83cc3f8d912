/**
 * The bot. With no platform tokens set it runs the embedded default: the console adapter on this terminal, a Redis
 * of its own, the GPU runner on the CPU backend and a tiny gpt-oss built on first use.
 *
 *   npm start                       # type /help
 *   printf '/train quick_test\n' | npm start --silent   # scripted: waits for the job, then exits
 */
import { startApp } from './app.ts';
import { ConsoleChat } from './chat/console.ts';
import { loadConfigForCli } from './config.ts';
import { logger } from './log.ts';

const log = logger('main');

async function main(): Promise<number> {
  const config = loadConfigForCli('warn');
  if (!config) return 2;
  const app = await startApp(config);
  const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const chat = new ConsoleChat({ bot: app.bot, input: process.stdin, output: process.stdout, tty, user: config.consoleUser });
  if (tty) process.stdout.write(`gpt-oss chatops bot, console mode (runner: ${app.runner?.name ?? 'external'}). Type /help; Ctrl-D quits.\n`);

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
  await app.stop();
  return interrupts > 0 || end === 'interrupt' ? 130 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    log.error('the bot could not start', e);
    process.exit(1);
  },
);
