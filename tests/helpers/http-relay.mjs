/**
 * A plain HTTP relay in a process of its own, in front of a protocol double (tests/helpers/http-relay.ts starts it).
 *
 * Why: a double runs in the bot's own process, and a Node server there accepts about one new connection per turn of
 * the event loop. A burst of 200 interaction callbacks opens 200 connections at once, so the bot's defers would
 * queue behind its own busy event loop on the double's side, which is no cost of the bot: Discord's and Slack's
 * servers are elsewhere. The relay takes those connections on its own event loop and passes the requests on over
 * a few kept-alive connections, unchanged (method, path, headers, body; the answer likewise).
 *
 *   node tests/helpers/http-relay.mjs <target port>   → sends its own port to the parent (IPC)
 */
import { Agent, createServer, request } from 'node:http';

const target = Number(process.argv[2]);
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

const server = createServer((req, res) => {
  const upstream = request(
    { host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers, agent },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', (e) => {
    res.writeHead(502, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ message: `relay: ${e.message}`, code: 0 }));
  });
  req.pipe(upstream);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send?.(server.address().port));
process.on('disconnect', () => process.exit(0));
