/** The platform-neutral bot: the queue, the model registry, the job watcher and the commands, over one Redis. */
import type { Redis } from 'ioredis';
import { AccessPolicy } from '../shared/access.ts';
import { Asks } from './asks.ts';
import { ChatStore } from './conversations.ts';
import { fileURLToPath } from 'node:url';
import { CommandRegistry } from './command-registry.ts';
import type { CommandServices } from './command-kit.ts';
import type { ChatSurface } from './surface.ts';
import type { Config } from '../shared/config.ts';
import { Deliveries } from './deliveries.ts';
import { JobWatcher } from './job-watcher.ts';
import { ModelRegistry } from '../shared/model-registry.ts';
import { TrainQueue } from './queue.ts';
import { RunnerRegistry } from '../shared/runner-registry.ts';
import { logger } from '../shared/log.ts';
import { connectionErrorOr } from '../shared/redis.ts';

const log = logger('bot');

/** The bot's parts, as a platform adapter drives them: the command registry itself rather than its list. */
export interface BotServices extends CommandServices {
  commands: CommandRegistry;
}

export interface Bot extends BotServices {
  close(): Promise<void>;
}

/**
 * After a start: a platform adapter that is ready edits again the messages of its platform's jobs and asks that
 * have not had their last edit (running, waiting, or ended while no bot process was up).
 */
export async function resumeMessages(bot: BotServices, surface: ChatSurface): Promise<void> {
  const resumed = await bot.watcher.resume(surface, bot.config.progressEditIntervalMs);
  if (resumed.length) log.info(`${surface.platform}: editing the messages of jobs ${resumed.join(', ')} again`);
  const asks = await bot.asks.resume(surface, bot.config.progressEditIntervalMs).catch((e) => {
    log.warn('could not look for unfinished asks', e);
    return [];
  });
  if (asks.length) log.info(`${surface.platform}: finishing the messages of asks ${asks.join(', ')}`);
}

export const COMMANDS_DIR = fileURLToPath(new URL('./commands/', import.meta.url));

export async function createBot(config: Config, connection: Redis): Promise<Bot> {
  const queue = new TrainQueue(connection, config.queuePrefix);
  const watcher = new JobWatcher(connection, queue);
  const chats = new ChatStore(connection, config.queuePrefix);
  const asks = new Asks(connection, config.queuePrefix, chats);
  // A BullMQ queue with no error listener prints its errors with console.error, past the log and its redaction; the
  // connection's own problems are logged already (src/shared/redis.ts), so these go to debug.
  for (const q of [queue.queue, asks.queue])
    q.on(
      'error',
      connectionErrorOr((e) => log.debug(`${q.name} queue: ${e.message}`)),
    );
  await Promise.all([watcher.ready(), asks.ready()]);
  const commands = await CommandRegistry.load(COMMANDS_DIR);
  return {
    config,
    access: new AccessPolicy(config.access),
    queue,
    models: new ModelRegistry(config.modelsDir),
    watcher,
    asks,
    chats,
    commands,
    deliveries: new Deliveries(connection, config.queuePrefix),
    runners: new RunnerRegistry(connection, config.queuePrefix),
    async close() {
      await watcher.close();
      await asks.close();
      await queue.close();
    },
  };
}
