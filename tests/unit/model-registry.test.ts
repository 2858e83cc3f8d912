/** /models list reads real folders: newest first, archive/ and stray entries left out, failures marked, latest flagged. */
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelList } from '../../src/bot/format.ts';
import { ModelRegistry } from '../../src/shared/model-registry.ts';

function folder(root: string, name: string, info?: string) {
  mkdirSync(join(root, name), { recursive: true });
  if (info !== undefined) writeFileSync(join(root, name, 'training_info.txt'), `# written by a test\n${info}`);
}

describe('the model registry', () => {
  it('lists models newest first with their facts, and which one is latest', async () => {
    const root = mkdtempSync(join(tmpdir(), 'registry-'));
    folder(
      root,
      'gpt-oss-20b_standard_20251004_2115',
      'status: succeeded\nfinal_loss: 0.5123\nband: optimal\nlora_r: 16\n',
    );
    folder(root, 'gpt-oss-20b_max_quality_20251005_0930', 'status: succeeded\nfinal_loss: 0.25\nlora_r: 32\n');
    folder(root, 'gpt-oss-20b_standard_20251004_2115-2', 'status: failed\nerror: boom\n');
    folder(root, 'gpt-oss-20b_conservative_20251006_0800', 'status: running\n');
    folder(root, 'archive/gpt-oss-20b_full_20240101_0000', 'status: succeeded\nfinal_loss: 0.5\n');
    folder(root, 'notes');
    folder(root, '.gpt-oss-20b_full_20251007_0000');
    symlinkSync('gpt-oss-20b_standard_20251004_2115', join(root, 'latest'));

    const models = await new ModelRegistry(root).list();
    expect(models.map((m) => [m.name, m.status, m.band?.id ?? null, m.rank, m.isLatest])).toEqual([
      ['gpt-oss-20b_conservative_20251006_0800', 'running', null, null, false],
      ['gpt-oss-20b_max_quality_20251005_0930', 'succeeded', 'overfitted', 32, false],
      ['gpt-oss-20b_standard_20251004_2115-2', 'failed', null, null, false],
      ['gpt-oss-20b_standard_20251004_2115', 'succeeded', 'optimal', 16, true],
    ]);
    const text = modelList(models);
    expect(text).toContain(
      '→ `gpt-oss-20b_standard_20251004_2115` · standard · 2025-10-04 21:15 · loss 0.512 🎯 Optimal · r=16 · latest',
    );
    expect(text).toContain('`gpt-oss-20b_standard_20251004_2115-2` · standard · 2025-10-04 21:15 · ❌ failed');
    expect(text).not.toContain('archive');
  });

  it('says how to make a first model when there is none, even without a models folder', async () => {
    const models = await new ModelRegistry(join(tmpdir(), 'no-such-models-dir')).list();
    expect(modelList(models)).toBe('No models yet. `/train quick_test` makes one in a few minutes.');
  });
});
