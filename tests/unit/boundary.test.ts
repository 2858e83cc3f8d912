/**
 * The floor plan, enforced: which layer may import which (docs/architecture.md draws it), no import circles, platform
 * SDKs only in the adapters, settings read only by the config.
 *
 *   src/shared/     used by the bot and the runner alike; imports nothing of ours outside itself
 *   src/bot/        the platform-neutral core and its commands; imports src/shared/
 *   src/platforms/  one adapter per chat platform; imports src/bot/ and src/shared/
 *   gpu-runner/     the runner host (and its Python); imports src/shared/ only
 *   src/main.ts, src/app.ts   the composition: the only files that put the layers together
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/shared/config.ts';

function files(dir: string): string[] {
  return readdirSync(join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const CODE = [...files('src'), ...files('gpu-runner')];
/** Discord's and Slack's packages, whichever of them: discord.js, @discordjs/*, @slack/*. */
const SDK = /^(discord\.js$|@discordjs\/|@slack\/)/;

/** Every module a file imports (types too: a circle of types is still a circle to a reader), resolved to repo paths. */
function imports(file: string): { ours: string[]; packages: string[] } {
  const text = readFileSync(join(REPO_ROOT, file), 'utf8');
  const specs = [
    ...text.matchAll(
      /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g,
    ),
  ].map((m) => m[1] ?? m[2] ?? m[3]!);
  const ours = specs.filter((s) => s.startsWith('.')).map((s) => normalize(join(dirname(file), s)));
  return { ours, packages: specs.filter((s) => !s.startsWith('.')) };
}

/** The layer a file belongs to, and the layers it may import. */
const LAYERS: { name: string; owns: (f: string) => boolean; mayImport: string[] }[] = [
  {
    name: 'composition',
    owns: (f) => f === 'src/main.ts' || f === 'src/app.ts',
    mayImport: ['composition', 'shared', 'bot', 'platforms', 'runner'],
  },
  { name: 'shared', owns: (f) => f.startsWith('src/shared/'), mayImport: ['shared'] },
  { name: 'bot', owns: (f) => f.startsWith('src/bot/'), mayImport: ['bot', 'shared'] },
  { name: 'platforms', owns: (f) => f.startsWith('src/platforms/'), mayImport: ['platforms', 'bot', 'shared'] },
  { name: 'runner', owns: (f) => f.startsWith('gpu-runner/'), mayImport: ['runner', 'shared'] },
];
const layerOf = (f: string) => LAYERS.find((l) => l.owns(f));

describe('the floor plan', () => {
  it('every TypeScript file of src/ and gpu-runner/ belongs to a layer', () => {
    expect(CODE.length).toBeGreaterThan(40);
    expect(CODE.filter((f) => !layerOf(f))).toEqual([]);
  });

  it('each layer imports only the layers below it', () => {
    const wrong = CODE.flatMap((f) => {
      const from = layerOf(f)!;
      return imports(f)
        .ours.filter((t) => !from.mayImport.includes(layerOf(t)?.name ?? 'outside'))
        .map((t) => `${f} (${from.name}) → ${t} (${layerOf(t)?.name ?? 'outside the layers'})`);
    });
    expect(wrong).toEqual([]);
  });

  it('only the platform adapters import a platform SDK', () => {
    const offenders = CODE.filter(
      (f) => !f.startsWith('src/platforms/') && imports(f).packages.some((p) => SDK.test(p)),
    );
    expect(offenders).toEqual([]);
  });

  it('no import circles', () => {
    const graph = new Map(CODE.map((f) => [f, imports(f).ours]));
    const state = new Map<string, 'open' | 'done'>();
    const circles: string[] = [];
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        circles.push([...path.slice(path.indexOf(f)), f].join(' → '));
        return;
      }
      state.set(f, 'open');
      for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of CODE) visit(f, []);
    expect(circles).toEqual([]);
  });

  it('only src/shared/config.ts reads process.env', () => {
    const readers = CODE.filter((f) => /process\.env\b/.test(readFileSync(join(REPO_ROOT, f), 'utf8')));
    expect(readers).toEqual(['src/shared/config.ts']);
  });
});
