/**
 * A GPU runner host on its own: one worker per GPU, taking training jobs from the bot's Redis.
 *
 *   REDIS_URL=redis://queue-host:6379 GPU_ID=0 TRAINER_BACKEND=cuda BASE_MODEL=unsloth/gpt-oss-20b-unsloth-bnb-4bit npm run runner
 */
import { ConfigError, loadConfig } from '../src/config.ts';
import { configureLog, logger } from '../src/log.ts';
import { closeRedis, connectRedis } from '../src/redis.ts';
import { startRunner } from './runner.ts';

const log = logger('runner');

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  configureLog({ level: config.logLevel ?? 'info', secrets: config.secrets });
  if (!config.redisUrl) {
    process.stderr.write('REDIS_URL is not set: a runner host takes jobs from the bot\'s Redis (see README, "GPU runner host")\n');
    return 2;
  }
  const connection = connectRedis(config.redisUrl);
  const runner = await startRunner({ config, connection });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log.info('stopping: the running job (if any) is cancelled and its folder marked');
  await runner.close();
  await closeRedis(connection);
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  log.error('the runner could not start', e);
  process.exit(1);
});
