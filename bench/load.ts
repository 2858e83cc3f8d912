/**
 * Load through both chat platforms at once (the driver and its checks are tests/helpers/load.ts, as in
 * tests/integration/load.test.ts): at each size, a fresh bot with its Discord and Slack adapters against the local
 * protocol doubles, one real Redis, no runner; a quarter as many users as commands send all their commands at the same
 * moment, half of them on each platform. Prints per platform the defer / ack time and the answer time (p50, p99) and
 * commands per second (to the platform's last answer), and whether every job was accounted for; then every job is
 * cancelled through the platforms and the queue must be empty.
 *
 *   node --import tsx bench/load.ts [sizes=100,300,1000] [--direct]
 *
 * --direct: the bot's HTTP requests go straight to the doubles in this process instead of through the relays
 * (tests/helpers/http-relay.mjs says why the relays are the default).
 */
import { cpus } from 'node:os';
import { startEmbeddedRedis } from '../src/shared/redis.ts';
import { cancelAll, MAX_QUEUED, p50, p99, runLoad, startLoadStack, type LoadResult } from '../tests/helpers/load.ts';

const direct = process.argv.includes('--direct');
const sizes = (process.argv.slice(2).find((a) => !a.startsWith('--')) ?? '100,300,1000').split(',').map(Number);
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const perSecond = (r: LoadResult, p: 'discord' | 'slack') =>
  (r.sent.filter((s) => s.user.platform === p).length / (r.platformSpanMs[p] / 1000)).toFixed(0);

const redis = await startEmbeddedRedis();
const rows: string[][] = [];
const notes: string[] = [];
let failed = false;
try {
  for (const [i, size] of sizes.entries()) {
    const stack = await startLoadStack(redis.url, `benchload${process.pid}x${i}`, { relay: !direct });
    try {
      const r = await runLoad(stack, Math.round(size / 4), 120_000);
      const left = await cancelAll(stack, r.queued, 120_000);
      const problems = [...r.problems, ...left];
      failed ||= problems.length > 0;
      for (const p of ['discord', 'slack'] as const) {
        rows.push([
          String(r.commands),
          p === 'discord' ? 'Discord' : 'Slack',
          perSecond(r, p),
          `${ms(p50(r.deferMs[p]))} / ${ms(p99(r.deferMs[p]))}`,
          `${ms(Math.max(...r.deferMs[p]))}`,
          `${ms(p50(r.answerMs[p]))} / ${ms(p99(r.answerMs[p]))}`,
        ]);
      }
      notes.push(
        `${r.commands} commands from ${r.users} users, ${(r.commands / (r.spanMs / 1000)).toFixed(0)} commands/s in all: /train ${r.accepted} queued, ${r.refused} refused at the limit, ${r.cancelled} cancelled; ` +
          (problems.length
            ? `${problems.length} PROBLEMS: ${problems.slice(0, 5).join('; ')}`
            : 'no job lost, none duplicated, every command answered rightly, the queue empty after the cancels'),
      );
      console.error(notes.at(-1));
    } finally {
      await stack.bot.queue.queue.obliterate({ force: true }).catch(() => undefined);
      await stack.stop();
    }
  }
  const head = ['commands', 'platform', 'commands/s', 'defer/ack p50 / p99 (ms)', 'max', 'answer p50 / p99 (ms)'];
  console.log(
    `${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}; ${direct ? 'HTTP straight to the doubles' : 'HTTP through the relays'}; MAX_QUEUED_PER_USER ${MAX_QUEUED}`,
  );
  console.log(`| ${head.join(' | ')} |\n| ${head.map(() => '---').join(' | ')} |`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  console.log(notes.join('\n'));
} finally {
  await redis.stop();
}
process.exit(failed ? 1 : 0);
