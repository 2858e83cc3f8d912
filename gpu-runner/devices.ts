/** What a runner worker reports about its device in each heartbeat: the GPU's name and memory (nvidia-smi), or the host's. */
import { execa } from 'execa';
import { cpus, freemem, totalmem } from 'node:os';
import type { RunnerBeat } from '../src/shared/runner-registry.ts';

export type DeviceReport = Pick<RunnerBeat, 'device' | 'deviceError'>;

const QUERY = ['--query-gpu=index,name,memory.used,memory.total', '--format=csv,noheader,nounits'];
const MIB = 1024 * 1024;

/** One line of `nvidia-smi --query-gpu=index,name,memory.used,memory.total --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(line: string): NonNullable<RunnerBeat['device']> | null {
  const parts = line.split(',').map((p) => p.trim());
  if (parts.length !== 4) return null;
  const [, model, used, total] = parts;
  const usedMiB = Number(used);
  const totalMiB = Number(total);
  if (!model || !Number.isFinite(usedMiB) || !Number.isFinite(totalMiB) || totalMiB <= 0) return null;
  return { kind: 'cuda', model, usedMiB, totalMiB };
}

/**
 * The class a job's `gpu` option names, from the GPU's name: "NVIDIA H100 80GB HBM3" → h100, "NVIDIA A100-SXM4-80GB"
 * → a100, "NVIDIA L4" → l4, "NVIDIA GeForce RTX 4090" → rtx4090. GPU_CLASS overrides it.
 */
export function gpuClassOf(model: string): string {
  const words = model.split(/\s+/).filter((w) => !/^(nvidia|geforce|tesla|quadro)$/i.test(w));
  const i = words.findIndex((w) => /\d/.test(w));
  if (i < 0) return (words[0] ?? 'gpu').toLowerCase();
  const word = words[i]!.split('-')[0]!;
  // "RTX 4090": a bare number keeps the word before it
  const name = /^\d+$/.test(word) && i > 0 ? `${words[i - 1]}${word}` : word;
  return name.toLowerCase();
}

/** The device of a worker: on the CPU backend the host's memory; otherwise its GPU through nvidia-smi. */
export async function probeDevice(
  backend: 'auto' | 'cpu' | 'cuda',
  gpuId: number | undefined,
  nvidiaSmi = 'nvidia-smi',
): Promise<DeviceReport> {
  const host = (): DeviceReport => {
    const c = cpus();
    return {
      device: {
        kind: 'cpu',
        model: `${c.length} × ${c[0]?.model.trim() ?? 'CPU'}`,
        usedMiB: Math.round((totalmem() - freemem()) / MIB),
        totalMiB: Math.round(totalmem() / MIB),
      },
    };
  };
  if (backend === 'cpu') return host();
  try {
    const { stdout } = await execa(nvidiaSmi, [...QUERY, `--id=${gpuId ?? 0}`], { timeout: 5_000 });
    const device = parseNvidiaSmi(stdout.trim().split('\n')[0] ?? '');
    return device ? { device } : { device: null, deviceError: 'nvidia-smi gave an answer this runner cannot read' };
  } catch (e) {
    const err = e as { code?: string; shortMessage?: string; stderr?: string };
    // no nvidia-smi and the backend may fall back: a CPU host
    if (err.code === 'ENOENT' && backend === 'auto') return host();
    const why =
      err.code === 'ENOENT'
        ? 'nvidia-smi not found'
        : err.stderr?.trim().split('\n')[0] || err.shortMessage || 'nvidia-smi failed';
    return { device: null, deviceError: why.slice(0, 200) };
  }
}
