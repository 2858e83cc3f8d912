/** The runner's zod schema against the same fixture files that the trainer's pytest checks. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/shared/config.ts';
import { parseTrainerLine } from '../../gpu-runner/trainer-protocol.ts';

const fixture = (name: string) =>
  readFileSync(`${REPO_ROOT}gpu-runner/trainer/protocol/${name}`, 'utf8')
    .split('\n')
    .filter((l) => l.trim());

describe('trainer protocol v1', () => {
  it.each(fixture('valid.jsonl'))('accepts %s', (line) => {
    expect(parseTrainerLine(line)).toMatchObject({ ok: true });
  });

  it.each(fixture('invalid.jsonl'))('refuses %s', (line) => {
    expect(parseTrainerLine(line)).toMatchObject({ ok: false });
  });

  it('refuses free text, which the runner never parses', () => {
    expect(parseTrainerLine("{'loss': '6.408', 'epoch': '0.04'}")).toEqual({ ok: false, problem: 'not JSON' });
    expect(parseTrainerLine('Step 3/30 loss=2.1')).toEqual({ ok: false, problem: 'not JSON' });
  });
});
