/** The live status line of a training, for a run that a runner's death split in two attempts. */
import { describe, expect, it } from 'vitest';
import { progressLine } from '../../src/bot/format.ts';
import type { TrainProgress } from '../../src/shared/jobs.ts';

const resumed: TrainProgress = {
  phase: 'training',
  step: 27,
  maxSteps: 100,
  loss: 3.2,
  notices: [],
  runner: 'vm#2',
  resumedFrom: 25,
  // this attempt: its first step (26) came 40 s after its trainer started, step 27 took 5 s (a slow first step)
  firstStep: { step: 26, elapsedS: 40 },
  elapsedS: 45,
  // the attempt before: 24 steps timed in 24 s, and 70 s of the run before this attempt's trainer started
  timed: { steps: 24, seconds: 24 },
  earlierS: 70,
};

describe('a resumed run', () => {
  it('counts the elapsed time of the whole run, not of this attempt alone', () => {
    expect(progressLine('1', resumed)).toContain(' · 1:55 elapsed'); // 70 s + 45 s
  });

  it('takes its pace from every attempt, so the ETA does not jump at the first slow step after the resume', () => {
    // (24 + 5) s for (24 + 1) steps: 1.16 s a step, 73 steps to go; this attempt alone would say 5 s a step (6:05)
    expect(progressLine('1', resumed)).toContain(' · ETA 1:25 · ↩️ resumed from step 25');
  });

  it('without an earlier attempt, as before: the pace from its own first step', () => {
    const plain: TrainProgress = {
      ...resumed,
      timed: undefined,
      earlierS: undefined,
      resumedFrom: undefined,
      firstStep: { step: 1, elapsedS: 10 },
      step: 11,
      elapsedS: 20,
    };
    expect(progressLine('1', plain)).toMatch(/ · 0:20 elapsed · ETA 1:29$/);
  });
});
