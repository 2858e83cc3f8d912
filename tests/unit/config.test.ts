import { describe, expect, it } from 'vitest';
import { type ConfigError, loadConfig } from '../../src/shared/config.ts';
import { configureLog, logger, redact } from '../../src/shared/log.ts';

describe('settings', () => {
  it('runs on the embedded default with nothing set', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      redisUrl: undefined,
      embeddedRunner: true,
      baseModel: 'tiny',
      trainerBackend: 'auto',
      queuePrefix: 'chatops',
    });
    expect(c.modelsDir).toMatch(/\/models$/);
  });

  it('lists every problem at once, naming each setting', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({ REDIS_URL: 'http://x', TRAINER_BACKEND: 'tpu', GPU_ID: '-1', EMBEDDED_RUNNER: 'maybe' });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error?.problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'EMBEDDED_RUNNER',
      'GPU_ID',
      'REDIS_URL',
      'TRAINER_BACKEND',
    ]);
  });

  it('does not start a runner in the bot process when the queue is remote, unless told to', () => {
    expect(loadConfig({ REDIS_URL: 'redis://q:6379' }).embeddedRunner).toBe(false);
    expect(loadConfig({ REDIS_URL: 'redis://q:6379', EMBEDDED_RUNNER: 'true' }).embeddedRunner).toBe(true);
  });

  it('keeps the Redis password out of every log line', () => {
    const c = loadConfig({ REDIS_URL: 'redis://:s3cret-pass@queue:6379/0' });
    const lines: string[] = [];
    configureLog({ secrets: c.secrets, sink: (l) => lines.push(l), level: 'debug' });
    logger('t').error('could not connect to redis://:s3cret-pass@queue:6379/0', new Error('auth s3cret-pass failed'));
    expect(lines.join('\n')).not.toContain('s3cret-pass');
    expect(lines.join('\n')).toContain('redis://:***@queue:6379/0');
    expect(redact('rediss://user:pw@h:1')).toBe('rediss://user:***@h:1');
    configureLog({ secrets: [], sink: (l) => process.stderr.write(`${l}\n`), level: 'warn' });
  });
});
