/**
 * Managing models from chat, on real model folders made by the real trainer: /models promote (a rollback of latest),
 * /models archive, /models compare and /models info, with who may do it; and the curves image they attach.
 */
import { cp, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderLossCurve, renderLossCurves } from '../../src/bot/loss-curve.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

describe('/models promote, archive, compare and info', () => {
  let h: Harness;
  let older: string;
  let newer: string;

  async function say(line: string): Promise<string[]> {
    const from = h.lines.length;
    h.type(line);
    await h.waitFor(/./, 15_000, from);
    await new Promise((r) => setTimeout(r, 200)); // the rest of a multi-line answer
    return h.lines.slice(from);
  }

  beforeAll(async () => {
    h = await startHarness({ CONSOLE_USER: 'ada' });
    h.type('/train quick_test');
    older = /model (\S+) \(now latest\)/.exec(await h.waitFor(/^✅ job 1 done/, 120_000))![1]!;
    h.type('/train quick_test r=4');
    newer = /model (\S+) \(now latest\)/.exec(await h.waitFor(/^✅ job 2 done/, 120_000))![1]!;
  }, 240_000); // two trainings: about 30 s on an idle 2-core machine, much more on a busy one
  afterAll(() => h?.stop());

  it('promote points latest back at an older model, atomically, and tells the channel who did it', async () => {
    expect(await readlink(join(h.modelsDir, 'latest'))).toBe(newer);
    const out = await say(`/models promote ${older}`);
    expect(out[0]).toBe(`🔁 ada made ${older} latest (was ${newer}); /ask latest now answers with it`); // the console shows markdown plain
    expect(await readlink(join(h.modelsDir, 'latest'))).toBe(older);
    expect((await say('/models list')).join('\n')).toMatch(new RegExp(`→ ${older} .* · latest`));
    expect((await readdir(h.modelsDir)).filter((n) => n.startsWith('.latest'))).toEqual([]); // no link left behind
  });

  it('refuses to promote a model that is missing, a path, or one whose run did not finish', async () => {
    expect((await say('/models promote gpt-oss-20b_quick_test_20200101_0000'))[0]).toMatch(
      /^⚠️ no model 'gpt-oss-20b_quick_test_20200101_0000'; try latest or one of /,
    );
    expect((await say('/models promote ../../etc'))[0]).toMatch(/^⚠️ a model is named by its folder name/);
    // a copy of a real folder whose run failed, as the trainer marks one
    const failed = newer.replace(/_(\d{8}_\d{4})(-\d+)?$/, '_$1-9');
    await cp(join(h.modelsDir, newer), join(h.modelsDir, failed), { recursive: true });
    const info = join(h.modelsDir, failed, 'training_info.txt');
    await writeFile(info, (await readFile(info, 'utf8')).replace('status: succeeded', 'status: failed'));
    expect((await say(`/models promote ${failed}`))[0]).toBe(
      `⚠️ ${failed} did not finish training (failed); only a finished model can be latest`,
    );
    expect(await readlink(join(h.modelsDir, 'latest'))).toBe(older);
  });

  it('archive moves a model out of the list into archive/, never latest itself', async () => {
    expect((await say(`/models archive ${older}`))[0]).toBe(
      `⚠️ ${older} is latest; /models promote another model first`,
    );
    expect((await say(`/models archive ${newer}`))[0]).toBe(`🗄️ ada archived ${newer} (kept in archive/)`);
    expect(await readdir(join(h.modelsDir, 'archive'))).toEqual([newer]);
    expect(await readFile(join(h.modelsDir, 'archive', newer, 'adapter_model.safetensors'))).toBeTruthy();
    // no row of its own (the failed copy above is named after it, newer + "-9", and stays listed)
    expect((await say('/models list')).join('\n')).not.toMatch(new RegExp(`^. ${newer} · `, 'm'));
    expect((await say(`/models promote ${newer}`))[0]).toMatch(/^⚠️ no model/); // archived: not promotable
  });

  it("compare shows the two runs' settings side by side, marking what differs", async () => {
    const [a, b] = [older, (await readdir(h.modelsDir)).find((n) => n.endsWith('-9'))!];
    const out = (await say(`/models compare ${a} ${b}`)).join('\n');
    expect(out).toContain(`Comparing 🔵 ${a} | 🟠 ${b}`);
    expect(out).toMatch(/≠ lora_r: 8 \| 4/);
    expect(out).toMatch(/≠ status: succeeded \| failed/);
    expect(out).toMatch(/ {2}profile: quick_test \| quick_test/);
    expect((await say(`/models compare ${a} ${a}`))[0]).toMatch(/^⚠️ that is .* twice; name two different models/);
  });

  it('refuses promote and archive to someone ALLOW_MANAGE_MODELS leaves out, and /help hides them', async () => {
    const other = await startHarness({
      CONSOLE_USER: 'eve',
      MODELS_DIR: h.modelsDir,
      ALLOW_MANAGE_MODELS: 'user:ada',
      EMBEDDED_RUNNER: 'false',
    });
    try {
      other.type(`/models promote ${older}`);
      expect(await other.waitFor(/⚠️/)).toMatch(/you may not run \/models promote here \(ALLOW_MANAGE_MODELS\)/);
      const from = other.lines.length;
      other.type('/help');
      await other.waitFor(/\/models/, 15_000, from);
      await new Promise((r) => setTimeout(r, 200));
      const help = other.lines.slice(from).join('\n');
      expect(help).toMatch(/\/models list/);
      expect(help).not.toMatch(/\/models (promote|archive|restore)\b/);
    } finally {
      await other.stop();
    }
  });
});

describe('the loss curves image', () => {
  it('draws two runs in two colours on one set of axes', () => {
    const a = [3, 2.5, 2, 1.6, 1.2];
    const b = [3.2, 2.9, 2.7, 2.6, 2.5, 2.4];
    const one = renderLossCurves([{ losses: a }]);
    const two = renderLossCurves([{ losses: a }, { losses: b }]);
    expect(two.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(one.equals(renderLossCurve(a))).toBe(true); // the single curve is the same picture as before
    expect(two.equals(one)).toBe(false);
  });
});
