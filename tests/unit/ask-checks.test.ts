/** What /ask checks in the bot: a first word of the prompt that was meant as an effort, and the device an ask waits for. */
import { describe, expect, it } from 'vitest';
import { deviceOf, effortSlip, typoDistance } from '../../src/bot/ask-flow.ts';

describe('a reasoning effort mistyped as the start of the prompt', () => {
  it('flags known near-misses, case-insensitively, when more words follow', () => {
    for (const word of ['ultra', 'max', 'minimal', 'med', 'xhigh', 'xlow', 'ULTRA', 'Max']) {
      expect(effortSlip(`${word} why is the sky blue?`), word).toBe(word);
    }
  });

  it('flags typos of low, medium and high, and an effort in capitals', () => {
    for (const word of [
      'hihg',
      'hgih',
      'hig',
      'higg',
      'lwo',
      'loww',
      'meduim',
      'mediun',
      'medum',
      'mediumm',
      'HIGH',
      'Low',
      'Medium',
    ]) {
      expect(effortSlip(`${word} why is the sky blue?`), word).toBe(word);
    }
  });

  it('leaves prose alone: common words near low or high, words with punctuation, other words', () => {
    for (const prompt of [
      'how do I train?',
      'now what?',
      'so what is a LoRA?',
      'to be or not',
      'his name?',
      'with what?',
      'right now',
      'light or heavy?',
      'Why is the sky blue?',
      'hi, who are you?',
      'slow down',
      'media queries?',
      'low latency tips',
      'high tide?',
      'hi there',
      'none of these?',
      'min and max?',
    ]) {
      expect(effortSlip(prompt), prompt).toBeNull();
    }
  });

  it('only when the word is not the whole prompt', () => {
    expect(effortSlip('ultra')).toBeNull();
    expect(effortSlip('  hi  ')).toBeNull();
    expect(effortSlip('ultra hard')).toBe('ultra');
  });

  it('counts a swap of two neighbouring letters as one edit', () => {
    expect(typoDistance('meduim', 'medium')).toBe(1);
    expect(typoDistance('hihg', 'high')).toBe(1);
    expect(typoDistance('how', 'low')).toBe(1);
    expect(typoDistance('so', 'low')).toBe(2);
    expect(typoDistance('', 'low')).toBe(3);
  });
});

describe('the device an ask waits for while a training runs', () => {
  const runner = (over: Partial<Parameters<typeof deviceOf>[0] & object>) => ({
    device: null,
    backend: 'auto',
    gpuClass: 'unknown',
    ...over,
  });
  it('is what the runner found, else its backend, else its GPU class, else just the runner', () => {
    expect(
      deviceOf(
        runner({ device: { kind: 'cpu', model: 'Xeon', usedMiB: 1, totalMiB: 2 }, backend: 'auto', gpuClass: 'cpu' }),
      ),
    ).toBe('the CPU');
    expect(
      deviceOf(runner({ device: { kind: 'cuda', model: 'NVIDIA H100', usedMiB: 1, totalMiB: 2 }, gpuClass: 'h100' })),
    ).toBe('the GPU');
    expect(deviceOf(runner({ backend: 'cpu' }))).toBe('the CPU');
    expect(deviceOf(runner({ backend: 'cuda' }))).toBe('the GPU');
    expect(deviceOf(runner({ gpuClass: 'a100' }))).toBe('the GPU');
    expect(deviceOf(runner({}))).toBe('the runner');
    expect(deviceOf(undefined)).toBe('the runner');
  });
});
