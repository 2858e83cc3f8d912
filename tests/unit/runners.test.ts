/** What a runner reports about its GPU, how /runners words it, and which runners a job that asked for one may use. */
import { describe, expect, it } from 'vitest';
import { gpuClassOf, parseNvidiaSmi } from '../../gpu-runner/devices.ts';
import { ago, runnerLine, runnersTable } from '../../src/bot/format.ts';
import { runnerMatches, type RunnerView } from '../../src/shared/runner-registry.ts';

describe('nvidia-smi', () => {
  it('reads the name and memory of one GPU from its CSV line', () => {
    // as `nvidia-smi --query-gpu=index,name,memory.used,memory.total --format=csv,noheader,nounits --id=0` prints it
    expect(parseNvidiaSmi('0, NVIDIA H100 80GB HBM3, 45123, 81559')).toEqual({
      kind: 'cuda',
      model: 'NVIDIA H100 80GB HBM3',
      usedMiB: 45123,
      totalMiB: 81559,
    });
    expect(parseNvidiaSmi('No devices were found')).toBeNull();
    expect(parseNvidiaSmi('0, NVIDIA H100, [N/A], 81559')).toBeNull();
  });

  it.each([
    ['NVIDIA H100 80GB HBM3', 'h100'],
    ['NVIDIA H200', 'h200'],
    ['NVIDIA A100-SXM4-80GB', 'a100'],
    ['NVIDIA L4', 'l4'],
    ['Tesla T4', 't4'],
    ['NVIDIA GeForce RTX 4090', 'rtx4090'],
    ['NVIDIA RTX A6000', 'a6000'],
  ])('names the class of %s %s', (model, cls) => {
    expect(gpuClassOf(model)).toBe(cls);
  });
});

describe('which runners a job may use', () => {
  const runner = { host: 'box-a', gpuId: 1, gpuClass: 'h100' };
  it.each([
    [undefined, true],
    [{ host: 'box-a' }, true],
    [{ host: 'BOX-A/GPU1' }, true],
    [{ host: 'box-a/gpu0' }, false],
    [{ host: 'box-a/gpu1#2' }, false], // a process's #N is not part of what a job may ask for
    [{ host: 'box-b' }, false],
    [{ gpu: 'h100' }, true],
    [{ gpu: 'a100' }, false],
    [{ host: 'box-a', gpu: 'a100' }, false],
  ])('%j → %s', (target, ok) => {
    expect(runnerMatches(runner, target)).toBe(ok);
  });
});

describe('/runners', () => {
  const now = Date.parse('2026-11-25T14:10:00Z');
  const base: RunnerView = {
    name: 'box-a/gpu0',
    host: 'box-a',
    gpuId: 0,
    gpuClass: 'h100',
    backend: 'cuda',
    device: { kind: 'cuda', model: 'NVIDIA H100 80GB HBM3', usedMiB: 45 * 1024, totalMiB: 80 * 1024 },
    job: { id: '12', profile: 'standard', step: 140, maxSteps: 200, requestedBy: 'ada' },
    startedAt: '2026-11-25T13:00:00Z',
    seenAt: '2026-11-25T14:09:58Z',
    live: true,
    modelsId: 'shared-1',
    instance: 'a1',
    waitingFor: null,
  };
  it('shows a live GPU with its memory used and free and its job at its step', () => {
    expect(runnerLine(base, now)).toBe(
      '🟢 **box-a/gpu0** · NVIDIA H100 80GB HBM3 (h100) · 45.0/80.0 GiB used, 35.0 free · job 12 standard for ada, step 140/200',
    );
  });
  it('flags a runner that writes to another models folder than the bot reads (a host without the shared mount)', () => {
    expect(runnerLine(base, now, 'shared-1')).not.toContain('⚠️');
    expect(runnerLine({ ...base, modelsId: 'local-disk' }, now, 'shared-1')).toMatch(
      / · ⚠️ writes to another models folder than the bot reads: its models will not show here \(mount the shared folder as MODELS_DIR\)$/,
    );
  });
  it('shows a GPU nvidia-smi could not read, and a job still loading its model', () => {
    const r = {
      ...base,
      device: null,
      deviceError: 'nvidia-smi not found',
      job: { ...base.job!, step: 0, maxSteps: 0 },
    };
    expect(runnerLine(r, now)).toBe(
      '🟢 **box-a/gpu0** · h100 · memory unknown (nvidia-smi not found) · job 12 standard for ada, starting',
    );
  });
  it('shows a live runner whose beats stopped as late, with what it was doing, before it goes silent', () => {
    expect(runnerLine({ ...base, beatMs: 10_000, sinceBeatMs: 14_000 }, now)).toMatch(/^🟢 /); // within half a beat of due
    expect(runnerLine({ ...base, beatMs: 10_000, sinceBeatMs: 16_000 }, now)).toBe(
      '🟡 **box-a/gpu0** · no heartbeat for 16 s (one is due every 10 s): stopped or cut off? · was on job 12 standard for ada, step 140/200',
    );
  });
  it('shows a silent runner with when it was last heard from and what it was doing', () => {
    const r = { ...base, live: false, seenAt: '2026-11-25T14:02:00Z' };
    expect(runnerLine(r, now)).toBe(
      '🔇 **box-a/gpu0** · silent since 14:02 UTC (8 min ago) · was on job 12 standard for ada, step 140/200',
    );
  });
  it('counts live and silent runners in its first line, and says how to start one when there is none', () => {
    expect(runnersTable([base, { ...base, name: 'box-b/gpu0', live: false, job: null }], now).split('\n')[0]).toBe(
      '**Runners**: 1 live · 1 silent (no heartbeat: crashed or cut off?)',
    );
    expect(runnersTable([], now)).toMatch(/^No runner has checked in\. Start one with `npm run runner`/);
  });
  it.each([
    [42, '42 s'],
    [300, '5 min'],
    [7200, '2 h'],
    [200_000, '2 d'],
  ])('%i s ago reads "%s"', (s, text) => {
    expect(ago(s)).toBe(text);
  });
});
