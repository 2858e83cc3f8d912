/**
 * The tables that the bot and the trainer share, read from the trainer's JSON files so there is exactly one of each:
 * training profiles and overrides (gpu-runner/trainer/profiles.json) and quality bands (bands.json).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const TRAINER_DIR = fileURLToPath(new URL('../../gpu-runner/trainer/', import.meta.url));

const ProfileSchema = z.object({
  steps: z.number().int().positive(),
  dataset_examples: z.number().int().positive(),
  use: z.string(),
  lora_r: z.number().int().positive(),
});
const TablesSchema = z.object({
  profiles: z.record(z.string(), ProfileSchema),
  overrides: z.object({
    r: z.object({ min: z.number().int(), max: z.number().int(), help: z.string() }),
    scheduler: z.object({ choices: z.array(z.string()).min(1), default: z.string(), help: z.string() }),
  }),
});
const BandSchema = z.object({
  id: z.string(),
  emoji: z.string(),
  label: z.string(),
  min: z.number().nullable(),
  max: z.number().nullable(),
  max_inclusive: z.boolean().optional(),
  /** The band's stripe behind a loss curve, as #rrggbb. */
  colour: z.string().regex(/^#[0-9a-f]{6}$/i),
});
const BandsSchema = z.object({
  bands: z.array(BandSchema).min(1),
  diverged: z.object({
    id: z.string(),
    emoji: z.string(),
    label: z.string(),
    colour: z.string().regex(/^#[0-9a-f]{6}$/i),
  }),
  final_loss_window: z.number().int().positive(),
});

function load<T>(file: string, schema: z.ZodType<T>): T {
  return schema.parse(JSON.parse(readFileSync(TRAINER_DIR + file, 'utf8')));
}

const tables = load('profiles.json', TablesSchema);
export type Profile = z.infer<typeof ProfileSchema>;
export const PROFILES: Readonly<Record<string, Profile>> = tables.profiles;
export const PROFILE_NAMES: readonly string[] = Object.keys(tables.profiles);
export const RANK = tables.overrides.r;
export const SCHEDULERS: readonly string[] = tables.overrides.scheduler.choices;
export const DEFAULT_SCHEDULER = tables.overrides.scheduler.default;

const bandTable = load('bands.json', BandsSchema);
export type Band = { id: string; emoji: string; label: string; colour: string };

/** The band of a loss: the first row of bands.json whose [min, max) holds it; NaN and ±∞ are 'diverged'. */
export function bandFor(loss: number | null | undefined): Band {
  if (loss === null || loss === undefined || !Number.isFinite(loss)) return bandTable.diverged;
  for (const b of bandTable.bands) {
    const above = b.min === null || loss >= b.min;
    const below = b.max === null || loss < b.max || (b.max_inclusive === true && loss === b.max);
    if (above && below) return b;
  }
  throw new Error(`bands.json leaves ${loss} without a band`);
}

export function bandById(id: string): Band {
  return [...bandTable.bands, bandTable.diverged].find((b) => b.id === id) ?? bandTable.diverged;
}
