/**
 * runTrainer against stand-in trainers (small shell scripts written by the test): the real train.py cannot be made to
 * finish and then be cancelled on cue.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTrainer } from '../../gpu-runner/trainer-process.ts';

const DONE =
  '{"v":1,"type":"done","model_name":"m_quick_test_20260101_0000","output_dir":"/tmp/m","final_loss":0.5,"band":"optimal","steps":30,"epochs":1,"duration_s":3,"latest":true}';

function script(body: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'stand-in-')), 'trainer.sh');
  writeFileSync(file, body);
  return file;
}

describe('the trainer process', () => {
  it('counts a run that said done as succeeded, even if a cancel arrives after it', async () => {
    const stop = new AbortController();
    const run = runTrainer({
      python: 'sh',
      script: script(`echo '${DONE}'\nsleep 30\n`),
      args: [],
      cwd: tmpdir(),
      signal: stop.signal,
      killGraceMs: 1_000,
      onMessage: (m) => {
        if (m.type === 'done') stop.abort('cancelled');
      },
    });
    await expect(run).resolves.toMatchObject({ type: 'done', latest: true, final_loss: 0.5 });
  });

  it('says it could not start the trainer when the interpreter is missing', async () => {
    const run = runTrainer({
      python: '/nonexistent/python3',
      script: 'train.py',
      args: [],
      cwd: tmpdir(),
      killGraceMs: 1_000,
      onMessage: () => undefined,
    });
    await expect(run).rejects.toMatchObject({
      kind: 'failed',
      message: expect.stringMatching(/^could not start the trainer with \/nonexistent\/python3: .*ENOENT/),
    });
  });
});
