/**
 * Publishing a model trained on a runner's own disk to the shared models folder, on real files: what is copied, the
 * checksums, the name taken by another host, and a copy that changed on the way (a disk or network that corrupts).
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { PublishFailed, publishModel } from '../../gpu-runner/publish.ts';

const NAME = 'tiny-gpt-oss_quick_test_20261125_1200';
let local: string;
let shared: string;

async function trainedFolder(dir: string, name: string): Promise<void> {
  const f = join(dir, name);
  await mkdir(join(f, 'checkpoint-30'), { recursive: true });
  await writeFile(join(f, 'adapter_model.safetensors'), Buffer.alloc(300_000, 7));
  await writeFile(join(f, 'adapter_config.json'), '{"r": 8}\n');
  await writeFile(join(f, 'training_info.txt'), `# facts\nstatus: succeeded\nmodel_name: ${name}\nfinal_loss: 0.5\n`);
  await writeFile(join(f, 'checkpoint-30', 'optimizer.pt'), 'big');
  await writeFile(join(f, '.trainer.lock'), '');
}

beforeEach(async () => {
  local = await mkdtemp(join(tmpdir(), 'publish-local-'));
  shared = await mkdtemp(join(tmpdir(), 'publish-shared-'));
  await trainedFolder(local, NAME);
});

describe('publishing to the shared models folder', () => {
  it('copies the model (not its checkpoints or lock) with a SHA256SUMS that sha256sum accepts, then moves latest', async () => {
    const done = await publishModel({ localDir: local, sharedDir: shared, name: NAME, moveLatest: true });
    expect(done).toMatchObject({ name: NAME, files: 3 });
    expect((await readdir(join(shared, NAME))).sort()).toEqual([
      'SHA256SUMS',
      'adapter_config.json',
      'adapter_model.safetensors',
      'training_info.txt',
    ]);
    const check = await execa('sha256sum', ['-c', 'SHA256SUMS'], { cwd: join(shared, NAME) });
    expect(check.stdout.split('\n').sort()).toEqual([
      'adapter_config.json: OK',
      'adapter_model.safetensors: OK',
      'training_info.txt: OK',
    ]);
    expect(await readlink(join(shared, 'latest'))).toBe(NAME);
    expect((await readdir(shared)).filter((n) => n.startsWith('.incoming'))).toEqual([]);
    // the checkpoints stay where the run can resume
    expect(await readdir(join(local, NAME, 'checkpoint-30'))).toEqual(['optimizer.pt']);
  });

  it('publishing the same model twice (its runner died after the copy) keeps the one copy', async () => {
    await publishModel({ localDir: local, sharedDir: shared, name: NAME, moveLatest: false });
    const again = await publishModel({ localDir: local, sharedDir: shared, name: NAME, moveLatest: true });
    expect(again.name).toBe(NAME);
    expect((await readdir(shared)).sort()).toEqual(['latest', NAME]);
  });

  it('takes the next name when another host published one of the same minute, and says so in its training_info.txt', async () => {
    await trainedFolder(shared, NAME); // another host's model
    const done = await publishModel({ localDir: local, sharedDir: shared, name: NAME, moveLatest: false });
    expect(done.name).toBe(`${NAME}-2`);
    expect(await readFile(join(shared, `${NAME}-2`, 'training_info.txt'), 'utf8')).toMatch(
      new RegExp(`^model_name: ${NAME}-2$`, 'm'),
    );
    await execa('sha256sum', ['-c', 'SHA256SUMS'], { cwd: join(shared, `${NAME}-2`) });
    await expect(readlink(join(shared, 'latest'))).rejects.toThrow(); // not asked to move latest
  });

  it('refuses a copy that changed on the way: nothing published, nothing half there, latest where it was', async () => {
    await trainedFolder(shared, 'older_quick_test_20261124_0900');
    await symlink('older_quick_test_20261124_0900', join(shared, 'latest'));
    const corrupt = async (incoming: string) => {
      const f = join(incoming, 'adapter_model.safetensors');
      const bytes = await readFile(f);
      bytes[1000] ^= 0xff;
      await writeFile(f, bytes);
    };
    await expect(
      publishModel({ localDir: local, sharedDir: shared, name: NAME, moveLatest: true, afterCopy: corrupt }),
    ).rejects.toThrow(
      new PublishFailed('adapter_model.safetensors changed on its way to the shared models folder (SHA-256 differs)'),
    );
    expect((await readdir(shared)).sort()).toEqual(['latest', 'older_quick_test_20261124_0900']);
    expect(await readlink(join(shared, 'latest'))).toBe('older_quick_test_20261124_0900');
  });
});
