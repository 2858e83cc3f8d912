/**
 * Starts and stops everything one bot process runs: Redis (its own, on the embedded default), the GPU runner (when
 * embedded) and the bot core. main.ts adds the chat adapters; tests and benchmarks start the same way.
 */
import type { Redis } from 'ioredis';
import { startRunner, type Runner } from '../gpu-runner/runner.ts';
import { createBot, type Bot } from './bot/bot.ts';
import type { Config } from './shared/config.ts';
import { closeRedis, connectRedis, startEmbeddedRedis, type EmbeddedRedis } from './shared/redis.ts';

export interface App {
  bot: Bot;
  runner: Runner | null;
  connection: Redis;
  redisUrl: string;
  stop(): Promise<void>;
}

export async function startApp(config: Config, options: { stalledInterval?: number } = {}): Promise<App> {
  // REDIS_URL unset: a redis-server of our own that keeps its data in the repository's cache folder between starts
  const embedded: EmbeddedRedis | null = config.redisUrl
    ? null
    : await startEmbeddedRedis({ dir: config.embeddedRedisDir });
  const redisUrl = config.redisUrl ?? embedded!.url;
  const connection = connectRedis(redisUrl);
  let runner: Runner | null = null;
  let bot: Bot;
  try {
    runner = config.embeddedRunner
      ? await startRunner({ config, connection, stalledInterval: options.stalledInterval })
      : null;
    bot = await createBot(config, connection);
  } catch (e) {
    await runner?.close().catch(() => undefined);
    await closeRedis(connection);
    await embedded?.stop();
    throw e;
  }
  return {
    bot,
    runner,
    connection,
    redisUrl,
    async stop() {
      await bot.close();
      await runner?.close();
      await closeRedis(connection);
      await embedded?.stop();
    },
  };
}
