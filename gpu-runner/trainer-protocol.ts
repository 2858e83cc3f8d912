/**
 * The trainer's stdout protocol, version 1 (gpu-runner/trainer/protocol/PROTOCOL.md). The runner checks every line
 * with these schemas and never parses free text. Unknown fields are allowed (additions within a version).
 */
import { z } from 'zod';

const count = z.number().int().nonnegative();
const finite = z.number().refine(Number.isFinite, 'must be finite (send null)');
const base = { v: z.literal(1) };

export const StartMessage = z.object({
  ...base,
  type: z.literal('start'),
  model_name: z.string(),
  output_dir: z.string(),
  profile: z.string(),
  base_model: z.string(),
  backend: z.string(),
  max_steps: count,
  dataset_examples: count,
  dataset_requested: count,
  lora_r: count,
  scheduler: z.string(),
  resumed_from_step: count.nullable(),
  /** Added within version 1: conversations held out for evaluation. */
  eval_examples: count.optional(),
});
export const NoticeMessage = z.object({ ...base, type: z.literal('notice'), message: z.string() });
export const StepMessage = z.object({
  ...base,
  type: z.literal('step'),
  step: count,
  max_steps: count,
  loss: finite.nullable(),
  learning_rate: finite.nullable(),
  epoch: finite.nonnegative(),
  elapsed_s: finite.nonnegative(),
});
export const CheckpointMessage = z.object({ ...base, type: z.literal('checkpoint'), step: count, path: z.string() });
export const DoneMessage = z.object({
  ...base,
  type: z.literal('done'),
  model_name: z.string(),
  output_dir: z.string(),
  final_loss: finite.nullable(),
  band: z.string(),
  /** Added within version 1: the loss on the held-out conversations, and its band (null: none were held out). */
  eval_loss: finite.nullable().default(null),
  eval_band: z.string().nullable().default(null),
  eval_examples: count.default(0),
  steps: count,
  epochs: finite.nonnegative(),
  duration_s: finite.nonnegative(),
  latest: z.boolean(),
});
export const ErrorMessage = z.object({
  ...base,
  type: z.literal('error'),
  kind: z.enum(['bad_input', 'cancelled', 'interrupted', 'out_of_memory', 'disk_full', 'failed']),
  message: z.string(),
});

export const TrainerMessage = z.discriminatedUnion('type', [
  StartMessage,
  NoticeMessage,
  StepMessage,
  CheckpointMessage,
  DoneMessage,
  ErrorMessage,
]);
export type TrainerMessage = z.infer<typeof TrainerMessage>;
export type DoneMessage = z.infer<typeof DoneMessage>;

export type ParsedLine = { ok: true; message: TrainerMessage } | { ok: false; problem: string };

export function parseTrainerLine(line: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, problem: 'not JSON' };
  }
  const result = TrainerMessage.safeParse(value);
  if (result.success) return { ok: true, message: result.data };
  return {
    ok: false,
    problem: result.error.issues.map((i) => `${i.path.join('.') || 'message'}: ${i.message}`).join('; '),
  };
}
