/** The platform-neutral bot: the queue, the model registry, the job watcher and the commands, over one Redis. */
import type { Redis } from 'ioredis';
import { AccessPolicy } from './access.ts';
import { Asks } from './asks.ts';
import { ChatStore } from './chats.ts';
import { fileURLToPath } from 'node:url';
import { CommandRegistry } from './command-registry.ts';
import type { Config } from './config.ts';
import { JobWatcher } from './job-watcher.ts';
import { ModelRegistry } from './model-registry.ts';
import { TrainQueue } from './queue.ts';

export interface BotServices {
  config: Config;
  access: AccessPolicy;
  queue: TrainQueue;
  models: ModelRegistry;
  watcher: JobWatcher;
  asks: Asks;
  chats: ChatStore;
  commands: CommandRegistry;
}

export interface Bot extends BotServices {
  close(): Promise<void>;
}

export const COMMANDS_DIR = fileURLToPath(new URL('../commands/', import.meta.url));

export async function createBot(config: Config, connection: Redis): Promise<Bot> {
  const queue = new TrainQueue(connection, config.queuePrefix);
  const watcher = new JobWatcher(connection, queue);
  const asks = new Asks(connection, config.queuePrefix);
  await Promise.all([watcher.ready(), asks.ready()]);
  const commands = await CommandRegistry.load(COMMANDS_DIR);
  return {
    config,
    access: new AccessPolicy(config.access),
    queue,
    models: new ModelRegistry(config.modelsDir),
    watcher,
    asks,
    chats: new ChatStore(connection, config.queuePrefix),
    commands,
    async close() {
      await watcher.close();
      await asks.close();
      await queue.close();
    },
  };
}
