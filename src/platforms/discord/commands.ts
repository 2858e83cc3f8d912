/** Our command definitions as Discord application commands, registered with one bulk overwrite when they changed. */
import type { REST } from 'discord.js';
import { Routes } from 'discord.js';
import type { CommandSpec, OptionSpec } from '../../bot/command-kit.ts';

const STRING = 3;
const INTEGER = 4;
const SUB_COMMAND = 1;
const clip = (s: string, n = 100) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function option(o: OptionSpec) {
  const base = { name: o.name, description: clip(o.description), required: Boolean(o.required) };
  if (o.type === 'integer')
    return {
      ...base,
      type: INTEGER,
      ...(o.min !== undefined && { min_value: o.min }),
      ...(o.max !== undefined && { max_value: o.max }),
    };
  return {
    ...base,
    type: STRING,
    ...(o.choices && { choices: o.choices.slice(0, 25).map((c) => ({ name: c, value: c })) }),
    ...(o.autocomplete && { autocomplete: true }),
  };
}

/** Discord wants required options before optional ones; values arrive by name, so the order is free to change. */
const options = (list: readonly OptionSpec[]) =>
  [...list].sort((a, b) => Number(Boolean(b.required)) - Number(Boolean(a.required))).map(option);

/** `/train standard` reads as typed: every profile is a subcommand of /train, with r and scheduler as its options. */
export function applicationCommand(c: CommandSpec) {
  const opts = c.subcommands
    ? c.subcommands.map((s) => ({
        type: SUB_COMMAND,
        name: s.name,
        description: clip(s.description),
        options: options(s.options),
      }))
    : options(c.options ?? []);
  return { type: 1, name: c.name, description: clip(c.description), options: opts };
}

/** The parts of a registered command that we set, in one shape, so ours and Discord's compare equal when unchanged. */
// biome-ignore lint/suspicious/noExplicitAny: Discord's JSON or ours, read field by field into one shape
function normalise(x: any): { name: string; [field: string]: unknown } {
  return {
    type: x.type ?? 1,
    name: x.name,
    description: x.description,
    required: x.required ?? false,
    min_value: x.min_value,
    max_value: x.max_value,
    autocomplete: x.autocomplete ?? false,
    choices: (x.choices ?? []).map((c: { name: string; value: unknown }) => [c.name, c.value]),
    options: (x.options ?? []).map(normalise),
  };
}

/** Overwrites the application's commands (in the guild, when one is set) only if they differ; says whether it did. */
export async function registerCommands(
  rest: REST,
  applicationId: string,
  guildId: string | undefined,
  commands: CommandSpec[],
): Promise<boolean> {
  const route = guildId
    ? Routes.applicationGuildCommands(applicationId, guildId)
    : Routes.applicationCommands(applicationId);
  const wanted = commands.map(applicationCommand);
  const current = (await rest.get(route)) as unknown[];
  const key = (list: unknown[]) => JSON.stringify(list.map(normalise).sort((a, b) => a.name.localeCompare(b.name)));
  if (key(current) === key(wanted)) return false;
  await rest.put(route, { body: wanted });
  return true;
}
