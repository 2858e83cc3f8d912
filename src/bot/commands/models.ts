/**
 * /models: list the trained adapters, show one, compare two, and manage them: promote (point latest at one, a
 * rollback), archive (out of the list, kept in archive/), archived (list those) and restore (back into the list).
 * Promote, archive and restore need ALLOW_MANAGE_MODELS, and their answer is public: the channel sees who did it.
 */
import { defineCommand, type CommandContext } from '../command-kit.ts';
import { archivedList, modelComparison, modelInfo, modelList } from '../format.ts';
import { InvalidInput } from '../../shared/errors.ts';
import { renderLossCurves, type LossSeries } from '../loss-curve.ts';
import type { ModelEntry } from '../../shared/model-registry.ts';
import { lossSparklines } from '../sparkline.ts';

const modelOption = (name: string, description: string) => ({
  name,
  description,
  type: 'string' as const,
  required: true,
  autocomplete: 'model' as const,
});

/**
 * Answers in the channel with the loss curves: attached as an image where the platform takes files, else drawn in
 * text below the answer, one line per curve (after its label, where `labels` gives one).
 */
async function replyWithCurves(
  ctx: CommandContext,
  text: string,
  series: LossSeries[],
  file: { name: string; title: string },
  labels?: string[],
): Promise<void> {
  if (!ctx.surface.finish) {
    const lines = lossSparklines(series.map((s) => s.losses)).map(
      (line, i) => `${labels ? `${labels[i]} ` : ''}${line ?? 'no loss history (loss_history.json)'}`,
    );
    await ctx.reply([text, ...lines].join('\n'));
    return;
  }
  const ref = await ctx.reply(text);
  if (series.every((s) => s.losses.length === 0)) return;
  await ctx.surface.finish(ref, text, { ...file, data: renderLossCurves(series) });
}

export default defineCommand({
  name: 'models',
  description: 'List, show, compare, promote, archive or restore the trained models',
  subcommandLabel: 'action',
  uses: ['files'],
  subcommands: [
    {
      name: 'list',
      description: 'every model, newest first, with its final loss, band and rank',
      options: [],
      async run(ctx) {
        await ctx.reply(modelList(await ctx.bot.models.list()));
      },
    },
    {
      name: 'info',
      description: 'every fact of one model from its training_info.txt, its size on disk and its loss curve',
      options: [modelOption('name', 'a model folder name, or latest')],
      async run(ctx, args) {
        const { models } = ctx.bot;
        const model = await models.find(String(args.name));
        const text = modelInfo(model, await models.size(model.name));
        await replyWithCurves(ctx, text, [{ losses: await models.losses(model.name) }], {
          name: `loss-curve-${model.name}.png`,
          title: `Loss curve of ${model.name}`,
        });
      },
    },
    {
      name: 'compare',
      description: 'two models: their loss curves in one image and their settings side by side',
      options: [modelOption('a', 'the first model (blue)'), modelOption('b', 'the second model (orange)')],
      async run(ctx, args) {
        const { models } = ctx.bot;
        const [a, b] = (await models.findAll([String(args.a), String(args.b)])) as [ModelEntry, ModelEntry];
        if (a.name === b.name) throw new InvalidInput(`that is ${a.name} twice; name two different models`);
        const series = await Promise.all([a, b].map(async (m) => ({ losses: await models.losses(m.name) })));
        const file = {
          name: `loss-curves-${a.name}-vs-${b.name}.png`,
          title: `Loss curves of ${a.name} and ${b.name}`,
        };
        await replyWithCurves(ctx, modelComparison(a, b), series, file, [`🔵 \`${a.name}\``, `🟠 \`${b.name}\``]);
      },
    },
    {
      name: 'promote',
      description: 'point latest at this model (a rollback); everyone sees who did it',
      permission: 'manage_models',
      options: [modelOption('name', 'the model latest should be')],
      async run(ctx, args) {
        const { model, previous } = await ctx.bot.models.promote(String(args.name));
        const was = previous === model.name ? ' (it already was)' : previous ? ` (was \`${previous}\`)` : '';
        await ctx.reply(`🔁 ${ctx.user.name} made \`${model.name}\` latest${was}; /ask latest now answers with it`);
      },
    },
    {
      name: 'archive',
      description: 'move a model to archive/: out of the list, kept on disk; everyone sees who did it',
      permission: 'manage_models',
      options: [modelOption('name', 'the model to archive (not latest)')],
      async run(ctx, args) {
        const model = await ctx.bot.models.archive(String(args.name));
        await ctx.reply(`🗄️ ${ctx.user.name} archived \`${model.name}\` (kept in archive/)`);
      },
    },
    {
      name: 'archived',
      description: 'the archived models (in archive/), newest first',
      options: [],
      async run(ctx) {
        await ctx.reply(archivedList(await ctx.bot.models.archived()));
      },
    },
    {
      name: 'restore',
      description: 'move an archived model back into the list; everyone sees who did it',
      permission: 'manage_models',
      options: [
        {
          name: 'name',
          description: 'the archived model (/models archived lists them)',
          type: 'string',
          required: true,
        },
      ],
      async run(ctx, args) {
        const model = await ctx.bot.models.restore(String(args.name));
        await ctx.reply(`📤 ${ctx.user.name} restored \`${model.name}\` from archive/; /models list shows it again`);
      },
    },
  ],
});
