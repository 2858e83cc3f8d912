/**
 * A GPU runner host on its own: one worker per GPU, taking training jobs from the bot's Redis.
 *
 *   REDIS_URL=redis://queue-host:6379 GPU_ID=0 TRAINER_BACKEND=cuda BASE_MODEL=unsloth/gpt-oss-20b-unsloth-bnb-4bit npm run runner
 */
import { loadConfigForCli } from '../src/shared/config.ts';
import { logger } from '../src/shared/log.ts';
import { closeRedis, connectRedis } from '../src/shared/redis.ts';
import { startRunner } from './runner.ts';

const log = logger('runner');

async function main(): Promise<number> {
  const config = loadConfigForCli('info');
  if (!config) return 2;
  if (!config.redisUrl) {
    process.stderr.write(
      'REDIS_URL is not set: a runner host takes jobs from the bot\'s Redis (see the README, "A GPU runner host")\n',
    );
    return 2;
  }
  const connection = connectRedis(config.redisUrl);
  const runner = await startRunner({ config, connection });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log.info(
    'stopping: the running job (if any) is interrupted and goes back to the queue, to resume from its checkpoint',
  );
  await runner.close();
  await closeRedis(connection);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    log.error('the runner could not start', e);
    process.exit(1);
  },
);
