/**
 * The runner registry's scripts on the real Redis: who may beat under a name, who may take it off the list. A worker
 * cut off from Redis longer than its heartbeat finds its name taken and must not write over the one that took it.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { RunnerRegistry, type RunnerBeat } from '../../src/shared/runner-registry.ts';

let redis: Redis;
let counter = 0;
beforeAll(() => {
  redis = new Redis(inject('redisUrl'));
});
afterAll(async () => {
  await redis.quit();
});

const beatOf =
  (instance: string, step: number | null = null) =>
  (name: string): RunnerBeat => ({
    name,
    instance,
    host: 'box',
    gpuId: 0,
    gpuClass: 'h100',
    backend: 'cuda',
    device: null,
    modelsId: null,
    job: step === null ? null : { id: '7', profile: 'quick_test', requestedBy: 'ada', step, maxSteps: 30 },
    waitingFor: null,
    startedAt: new Date().toISOString(),
    seenAt: new Date().toISOString(),
  });

describe('the runner registry', () => {
  it('gives a second live process on one GPU its own name, and the first its old one back once it lapsed', async () => {
    const registry = new RunnerRegistry(redis, `registry${process.pid}x${++counter}`);
    expect(await registry.claim('box/gpu0', beatOf('a'), 200)).toBe('box/gpu0');
    expect(await registry.claim('box/gpu0', beatOf('b'), 10_000)).toBe('box/gpu0#2');
    await new Promise((r) => setTimeout(r, 300));
    expect((await registry.list()).map((r) => [r.name, r.live])).toEqual([
      ['box/gpu0#2', true],
      ['box/gpu0', false],
    ]);
    expect(await registry.claim('box/gpu0', beatOf('c'), 10_000)).toBe('box/gpu0');
  });

  it("tells, on Redis's clock, how long ago a live runner beat last", async () => {
    const registry = new RunnerRegistry(redis, `registry${process.pid}x${++counter}`);
    await registry.claim('box/gpu0', (name) => ({ ...beatOf('a')(name), beatMs: 1_000 }), 3_000);
    expect((await registry.list())[0]!.sinceBeatMs).toBeLessThan(500);
    await new Promise((r) => setTimeout(r, 1_700)); // its beats stopped: it died
    const [late] = await registry.list();
    expect(late).toMatchObject({ live: true });
    expect(late!.sinceBeatMs).toBeGreaterThanOrEqual(1_600);
  });

  it("refuses the beat of a process whose name another took while it was cut off, and keeps the new holder's entry", async () => {
    const registry = new RunnerRegistry(redis, `registry${process.pid}x${++counter}`);
    await registry.claim('box/gpu0', beatOf('old'), 100);
    await new Promise((r) => setTimeout(r, 200)); // the old process's key lapsed
    await registry.claim('box/gpu0', beatOf('new', 3), 10_000);
    expect(await registry.beat(beatOf('old', 20)('box/gpu0'), 10_000)).toBe(false);
    expect(await registry.beat(beatOf('new', 4)('box/gpu0'), 10_000)).toBe(true);
    const [view] = await registry.list();
    expect(view).toMatchObject({ name: 'box/gpu0', instance: 'new', live: true, job: { step: 4 } });
  });

  it('takes a runner off the list only when the process that holds the name leaves', async () => {
    const registry = new RunnerRegistry(redis, `registry${process.pid}x${++counter}`);
    await registry.claim('box/gpu0', beatOf('holder'), 10_000);
    await registry.leave('box/gpu0', 'someone-else');
    expect((await registry.list()).map((r) => r.name)).toEqual(['box/gpu0']);
    await registry.leave('box/gpu0', 'holder');
    expect(await registry.list()).toEqual([]);
  });
});
