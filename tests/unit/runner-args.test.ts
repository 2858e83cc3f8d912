/** What the runner hands the trainer: one array element per value, a user's choices bound to their flags. */
import { describe, expect, it } from 'vitest';
import { trainerArgs } from '../../gpu-runner/runner.ts';
import { loadConfig } from '../../src/shared/config.ts';

const config = loadConfig({
  MODELS_DIR: '/srv/models',
  DATASET: '/srv/data/team.jsonl',
  BASE_MODEL: 'unsloth/gpt-oss-20b-unsloth-bnb-4bit',
  TRAINER_BACKEND: 'cuda',
  GPU_ID: '1',
});
const who = { id: 'u1', name: '--models-dir=/tmp/evil; rm -rf /', platform: 'console' };

describe('the trainer’s arguments', () => {
  it('carry the profile, the overrides and the runner’s settings, each bound to its flag', () => {
    const args = trainerArgs(
      config,
      {
        profile: 'standard',
        r: 32,
        scheduler: 'cosine',
        requestedBy: who,
        origin: { platform: 'console', channelId: 'c' },
      },
      '7',
    );
    expect(args).toEqual([
      '--profile=standard',
      '--models-dir=/srv/models',
      '--dataset=/srv/data/team.jsonl',
      '--base-model=unsloth/gpt-oss-20b-unsloth-bnb-4bit',
      '--backend=cuda',
      '--job-id=7',
      '--requested-by=--models-dir=/tmp/evil; rm -rf / (console)',
      '--r=32',
      '--scheduler=cosine',
      '--gpu=1',
    ]);
  });

  it('leave out the overrides nobody asked for', () => {
    const args = trainerArgs(
      config,
      { profile: 'quick_test', requestedBy: who, origin: { platform: 'console', channelId: 'c' } },
      '8',
    );
    expect(args.some((a) => a.startsWith('--r=') || a.startsWith('--scheduler='))).toBe(false);
  });
});
