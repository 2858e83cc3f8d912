/**
 * The documentation says what the code does: the profile and band tables of models/README.md (and README.md's) are
 * those of gpu-runner/trainer/profiles.json and bands.json, the tiny base's learning rate is the one it is built with,
 * every file README.md and models/README.md link to is in the repository, and .env.example shows each setting's
 * default.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig, REPO_ROOT } from '../../src/shared/config.ts';
import { ModelRegistry } from '../../src/shared/model-registry.ts';
import { PROFILE_NAMES } from '../../src/shared/tables.ts';

const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');
const README = 'README.md';
const MODELS_README = 'models/README.md';

interface Band {
  id: string;
  emoji: string;
  label: string;
  min: number | null;
  max: number | null;
  max_inclusive?: boolean;
}
const profilesJson = JSON.parse(read('gpu-runner/trainer/profiles.json')) as {
  profiles: Record<string, Record<string, string | number>>;
};
const bandsJson = JSON.parse(read('gpu-runner/trainer/bands.json')) as {
  bands: Band[];
  diverged: { id: string; emoji: string; label: string };
  final_loss_window: number;
};

/** Markdown text without fenced code blocks and inline code, whose brackets are no links. */
function prose(md: string): string {
  return md.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** Every pipe table of a markdown text: its header cells and its rows, keyed by header. */
function tables(md: string): { header: string[]; rows: Record<string, string>[] }[] {
  const found: { header: string[]; rows: Record<string, string>[] }[] = [];
  const lines = md.split('\n');
  const cells = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim());
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith('|') || !/^\|[\s|:-]+\|$/.test(lines[i + 1] ?? '')) continue;
    const header = cells(lines[i]!);
    const rows: Record<string, string>[] = [];
    for (i += 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
      const row = cells(lines[i]!);
      rows.push(Object.fromEntries(header.map((h, k) => [h, row[k] ?? ''])));
    }
    found.push({ header, rows });
  }
  return found;
}

function tableWith(md: string, file: string, ...columns: string[]) {
  const table = tables(md).find((t) => columns.every((c) => t.header.includes(c)));
  if (!table) throw new Error(`${file} has no table with the columns ${columns.join(', ')}`);
  return table;
}

/** The phrases a file lacks (whitespace and line breaks count as one space), each named with the file. */
function missingFrom(file: string, phrases: string[]): string[] {
  const text = read(file).replace(/\s+/g, ' ');
  return phrases.filter((p) => !text.includes(p)).map((p) => `${file} lacks '${p}'`);
}

/** A number as the docs write it: 1 as 1.0, 0.0002 as 0.0002. */
const num = (n: number) => (Number.isInteger(n) ? n.toFixed(1) : String(n));

/** A band's range as the docs write it ("< 0.3", "0.3 to < 0.4", "0.7 to 1.0", "> 1.0"): the first row that matches wins. */
function rangeText(band: Band, previous: Band | undefined): string {
  const below = band.max === null ? '' : band.max_inclusive ? `≤ ${num(band.max)}` : `< ${num(band.max)}`;
  const aboveOnly = previous?.max_inclusive === true && previous.max === band.min;
  if (band.min === null) return below;
  if (band.max === null) return `${aboveOnly ? '>' : '≥'} ${num(band.min)}`;
  return `${aboveOnly ? '> ' : ''}${num(band.min)} to ${band.max_inclusive ? num(band.max) : below}`;
}
const bandRows = bandsJson.bands.map((b, i) => ({
  band: `${b.emoji} ${b.label}`,
  id: `\`${b.id}\``,
  loss: rangeText(b, bandsJson.bands[i - 1]),
}));
const divergedRow = {
  band: `${bandsJson.diverged.emoji} ${bandsJson.diverged.label}`,
  id: `\`${bandsJson.diverged.id}\``,
  loss: 'NaN or infinite',
};

/** The columns of a profile table and the key of profiles.json each shows. */
const PROFILE_COLUMNS: Record<string, string> = {
  steps: 'steps',
  'dataset examples': 'dataset_examples',
  'learning rate': 'learning_rate',
  'batch size': 'batch_size',
  'grad accum': 'grad_accum',
  'LoRA r': 'lora_r',
  'max seq length': 'max_seq_length',
  'checkpoint every': 'save_every',
  use: 'use',
};

function expectProfileTable(file: string, required: string[]) {
  const table = tableWith(read(file), file, 'profile', ...required);
  expect(
    table.rows.map((r) => r.profile),
    `${file}: the profiles, in profiles.json's order`,
  ).toEqual([...PROFILE_NAMES]);
  const shown = table.header.filter((h) => h in PROFILE_COLUMNS);
  for (const row of table.rows) {
    const profile = profilesJson.profiles[row.profile!]!;
    for (const column of shown) {
      const want = profile[PROFILE_COLUMNS[column]!];
      const got = typeof want === 'number' ? Number(row[column]) : row[column];
      expect(got, `${file}: ${row.profile}'s ${column}`).toEqual(want);
    }
  }
}

describe('the docs and the tables the code reads', () => {
  it("models/README.md's profile table is profiles.json, every column of it", () => {
    expectProfileTable(MODELS_README, Object.keys(PROFILE_COLUMNS));
  });

  it("README.md's profile table is profiles.json", () => {
    expectProfileTable(README, ['steps', 'dataset examples', 'use']);
  });

  it("models/README.md's band table is bands.json, with diverged last", () => {
    const table = tableWith(read(MODELS_README), MODELS_README, 'band', 'id', 'loss');
    expect(table.rows).toEqual([...bandRows, divergedRow]);
  });

  it("README.md's bands and both final-loss windows are bands.json's", () => {
    const window = `the mean of the last ${bandsJson.final_loss_window} `;
    expect(
      missingFrom(README, [
        ...[...bandRows, { ...divergedRow, loss: '(NaN or infinite' }].map((r) => `${r.band} ${r.loss}`),
        window,
      ]),
    ).toEqual([]);
    expect(missingFrom(MODELS_README, [window])).toEqual([]);
  });

  it('both READMEs give the learning rate the tiny base is built with', () => {
    const rate = /TRAINING_DEFAULTS = \{"learning_rate": ([0-9.e-]+)\}/.exec(
      read('gpu-runner/trainer/tiny_model.py'),
    )?.[1];
    expect(rate, "tiny_model.py's TRAINING_DEFAULTS").toBeDefined();
    expect(missingFrom(README, [`learning rate ${rate} `])).toEqual([]);
    expect(missingFrom(MODELS_README, [`learning_rate: ${rate} `, `**${rate}**`])).toEqual([]);
  });
});

describe('links', () => {
  for (const file of [README, MODELS_README]) {
    it(`every file ${file} links to is in the repository (and not ignored by git)`, () => {
      const targets = [...prose(read(file)).matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
        .map((m) => m[1]!)
        .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith('#'))
        .map((t) => relative(REPO_ROOT, resolve(REPO_ROOT, dirname(file), decodeURI(t.replace(/[#?].*$/, '')))));
      expect(targets.length, `${file} links to files`).toBeGreaterThan(0);
      expect(
        targets.filter((t) => t.startsWith('..') || !existsSync(join(REPO_ROOT, t))),
        `${file}: links to nothing`,
      ).toEqual([]);
      let ignored = '';
      try {
        ignored = execFileSync('git', ['check-ignore', '--', ...targets], { cwd: REPO_ROOT, encoding: 'utf8' });
      } catch (e) {
        const status = (e as { status?: number }).status;
        if (status !== 1) return; // 1: none is ignored; anything else: no git here (a copy without .git), nothing to ask
      }
      expect(
        ignored.split('\n').filter(Boolean),
        `${file}: links to files git ignores (a fresh clone lacks them)`,
      ).toEqual([]);
    });
  }
});

describe('the models folder', () => {
  it('keeps its README.md out of /models list, as it keeps .gitkeep, .models-id and archive/', async () => {
    const root = mkdtempSync(join(tmpdir(), 'models-readme-'));
    copyFileSync(join(REPO_ROOT, MODELS_README), join(root, 'README.md'));
    writeFileSync(join(root, '.gitkeep'), '');
    writeFileSync(join(root, '.models-id'), 'id\n');
    mkdirSync(join(root, 'archive'));
    mkdirSync(join(root, 'tiny-gpt-oss_quick_test_20261201_1129'));
    writeFileSync(
      join(root, 'tiny-gpt-oss_quick_test_20261201_1129', 'training_info.txt'),
      'status: succeeded\nfinal_loss: 3.3472\n',
    );
    const models = await new ModelRegistry(root).list();
    expect(models.map((m) => m.name)).toEqual(['tiny-gpt-oss_quick_test_20261201_1129']);
  });
});

describe('.env.example', () => {
  // `# NAME=value`: the default (unset means that value); `# NAME=`: unset; `# Example: NAME=value`: not a default.
  const shown = [...read('.env.example').matchAll(/^# ([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1]!, m[2]!] as const);

  it('shows every setting once', () => {
    const names = shown.map(([name]) => name);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  it('shows each setting of the bot at its default', () => {
    const defaults = loadConfig({});
    const notDefault = shown
      .filter(([, value]) => value !== '')
      .filter(([name, value]) => {
        try {
          return !isDeepStrictEqual(loadConfig({ [name]: value }), defaults);
        } catch {
          return true;
        }
      });
    expect(notDefault).toEqual([]);
  });
});
