/** One real redis-server for the whole test run (each test file uses its own queue prefix). */
import type { TestProject } from 'vitest/node';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/shared/redis.ts';

let redis: EmbeddedRedis | undefined;

export async function setup(project: TestProject): Promise<void> {
  redis = await startEmbeddedRedis();
  project.provide('redisUrl', redis.url);
}

export async function teardown(): Promise<void> {
  await redis?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
