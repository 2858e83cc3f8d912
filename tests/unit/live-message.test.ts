import { describe, expect, it } from 'vitest';
import { LiveMessage } from '../../src/bot/live-message.ts';

function recorder() {
  const edits: { at: number; text: string }[] = [];
  const start = Date.now();
  return {
    edits,
    surface: { edit: async (_ref: unknown, text: string) => void edits.push({ at: Date.now() - start, text }) },
  };
}

describe('a live progress message', () => {
  it('coalesces a burst of updates into at most one edit per interval, newest text winning', async () => {
    const { edits, surface } = recorder();
    const live = new LiveMessage(surface, { channelId: 'c', id: '1' }, 'start', 100);
    for (let i = 1; i <= 50; i++) live.update(`step ${i}`);
    await new Promise((r) => setTimeout(r, 150));
    expect(edits.map((e) => e.text)).toEqual(['step 50']);
  });

  it('never sends two edits closer than the interval, and never drops the final text', async () => {
    const { edits, surface } = recorder();
    const live = new LiveMessage(surface, { channelId: 'c', id: '1' }, 'start', 60);
    for (let i = 1; i <= 20; i++) {
      live.update(`step ${i}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await live.finish('done');
    expect(edits.at(-1)?.text).toBe('done');
    for (let i = 1; i < edits.length; i++) expect(edits[i]!.at - edits[i - 1]!.at).toBeGreaterThanOrEqual(55);
    expect(edits.length).toBeLessThanOrEqual(Math.ceil(edits.at(-1)!.at / 60) + 1);
    expect(live.edits).toBe(edits.length);
  });

  it('ignores updates after the final text', async () => {
    const { edits, surface } = recorder();
    const live = new LiveMessage(surface, { channelId: 'c', id: '1' }, 'start', 0);
    await live.finish('done');
    live.update('late');
    await new Promise((r) => setTimeout(r, 20));
    expect(edits.map((e) => e.text)).toEqual(['done']);
  });
});
