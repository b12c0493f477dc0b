/**
 * `npm run bench:serve`: the OpenAI-compatible server (`switchyard serve`, src/server/) under load
 * on loopback, with the embedded model, in its own process (so the load generator does not share
 * its event loop). 64 concurrent streaming chat requests with `--parallel` 1 (no batching: one
 * generation at a time, the rest queue), 4 (the default) and 16, then the same 64 one at a time:
 * errors, generated tokens, throughput (tokens/s over the wall time), time to first token and
 * inter-token latency (p50 / p95), and from /metrics the mean batch (sequence steps per forward
 * step). Then the same with experts offloaded (`--expert-memory 25%`): expert bytes read from the
 * file per generated token, which batching shares between the sequences that pick an expert.
 * Last, the same requests through the library in this process (no HTTP, no load generator on the
 * same cores) with 1, 4 and 16 sequences. Each figure is the best of `--rounds=N` (default 3)
 * interleaved rounds. `--quick`: 16 requests.
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defaultModelPath } from '../src/api/default-model.js';
import { loadModel } from '../src/api/model.js';
import { parseChatRequest } from '../src/server/schema.js';
import { gitInfo, writeResults } from './results.js';

/** Kernel threads of the server (and of the in-process runs): SWITCHYARD_THREADS, else up to 2. */
const THREADS = process.env.SWITCHYARD_THREADS ?? String(Math.min(2, cpus().length));

/** Starts `switchyard serve` on a free port; resolves with its URL and a stop function. */
async function startServer(n: number, args: string[]): Promise<{ url: string; stop: () => Promise<void> }> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/run.ts', '--threads', THREADS, 'serve', '--port', '0', '--ctx', '512', '--max-queue', String(2 * n), ...args],
    { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving .* at (http:\/\/\S+) /.exec(err);
      if (m) resolve(m[1] as string);
    });
    child.on('exit', (code) => reject(new Error(`switchyard serve exited ${code}: ${err}`)));
  });
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGINT');
      }),
  };
}

/** The server's counters (src/server/metrics.ts) that this bench reads. */
async function counters(url: string): Promise<{ batches: number; steps: number; expertBytes: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string) => Number(/^(\S+) (\S+)$/m.exec(text.split('\n').find((l) => l.startsWith(`${name} `)) ?? '')?.[2] ?? 0);
  return { batches: value('switchyard_batches_total'), steps: value('switchyard_batch_steps_total'), expertBytes: value('switchyard_expert_cache_bytes_read_total') };
}

interface One {
  ok: boolean;
  error?: string;
  tokens: number;
  ttft: number;
  gaps: number[];
}

/** Request i of the load: a streamed, seeded, sampled chat completion. */
function chatBody(i: number, maxTokens: number) {
  return {
    messages: [{ role: 'user', content: `Tell me about the Union, part ${i}.` }],
    stream: true,
    max_tokens: maxTokens,
    temperature: 0.8,
    seed: i,
  };
}

async function request(url: string, i: number, maxTokens: number): Promise<One> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody(i, maxTokens)),
    });
    if (!res.ok || !res.body) return { ok: false, error: `HTTP ${res.status}`, tokens: 0, ttft: 0, gaps: [] };
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let tokens = 0;
    let ttft = 0;
    let last = 0;
    const gaps: number[] = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let at = buf.indexOf('\n\n');
      while (at >= 0) {
        const line = buf.slice(0, at);
        buf = buf.slice(at + 2);
        at = buf.indexOf('\n\n');
        if (!line.startsWith('data: {')) continue;
        const chunk = JSON.parse(line.slice(6)) as { error?: { message: string }; choices?: { delta?: { content?: string } }[] };
        if (chunk.error) return { ok: false, error: chunk.error.message, tokens, ttft, gaps };
        if (!chunk.choices?.[0]?.delta?.content) continue;
        const now = performance.now();
        if (tokens === 0) ttft = now - t0;
        else gaps.push(now - last);
        last = now;
        tokens++;
      }
    }
    return { ok: true, tokens, ttft, gaps };
  } catch (e) {
    return { ok: false, error: String(e), tokens: 0, ttft: 0, gaps: [] };
  }
}

const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] as number;
};

function summary(name: string, parallel: number, runs: One[], seconds: number, c: { batches: number; steps: number; expertBytes: number }) {
  const tokens = runs.reduce((n, r) => n + r.tokens, 0);
  const ttfts = runs.filter((r) => r.ok).map((r) => r.ttft);
  const gaps = runs.flatMap((r) => r.gaps);
  return {
    scenario: name,
    parallel,
    requests: runs.length,
    errors: runs.filter((r) => !r.ok).length,
    firstError: runs.find((r) => !r.ok)?.error,
    tokens,
    seconds,
    tokensPerSecond: tokens / seconds,
    ttftP50: pct(ttfts, 0.5),
    ttftP95: pct(ttfts, 0.95),
    itlP50: pct(gaps, 0.5),
    itlP95: pct(gaps, 0.95),
    meanBatch: c.batches > 0 ? c.steps / c.batches : 0,
    expertBytesPerToken: tokens > 0 ? c.expertBytes / tokens : 0,
  };
}

type Row = ReturnType<typeof summary>;

/** One server: a warm-up, then the requests (all at once, or one at a time); the counters are the scenario's own. */
async function scenario(name: string, n: number, maxTokens: number, parallel: number, concurrent: boolean, extra: string[] = []): Promise<Row> {
  const server = await startServer(n, ['--parallel', String(parallel), ...extra]);
  try {
    await request(server.url, 0, 4); // warm-up
    const before = await counters(server.url);
    const t0 = performance.now();
    let runs: One[];
    if (concurrent) runs = await Promise.all(Array.from({ length: n }, (_, i) => request(server.url, i, maxTokens)));
    else {
      runs = [];
      for (let i = 0; i < n; i++) runs.push(await request(server.url, i, maxTokens));
    }
    const seconds = (performance.now() - t0) / 1000;
    const after = await counters(server.url);
    const delta = { batches: after.batches - before.batches, steps: after.steps - before.steps, expertBytes: after.expertBytes - before.expertBytes };
    return summary(name, parallel, runs, seconds, delta);
  } finally {
    await server.stop();
  }
}

/**
 * The same requests through the library in this process, no HTTP: `sequences` generations at a
 * time (a new one starts when one ends), with the options the server maps these requests to.
 * Separates the engine's batching from the HTTP and load-generator costs on the same cores.
 */
async function library(n: number, maxTokens: number, sequences: number) {
  const model = await loadModel(defaultModelPath(), { threads: Number(THREADS), contextLength: 512, sequences });
  try {
    const next = Array.from({ length: n }, (_, i) => i);
    let tokens = 0;
    const worker = async () => {
      for (let i = next.shift(); i !== undefined; i = next.shift()) {
        // The server's own mapping of the request, so that both runs generate the same.
        const r = parseChatRequest(chatBody(i, maxTokens), { experts: model.info.experts?.count ?? 1, vocabSize: model.info.vocabSize });
        for await (const e of model.chat(r.messages, r.options)) if (e.type === 'token') tokens++;
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: sequences }, worker));
    const seconds = (performance.now() - t0) / 1000;
    const b = model.batchStats();
    return { sequences, tokens, seconds, tokensPerSecond: tokens / seconds, meanBatch: b.steps / b.batches, rowsPerBatch: b.tokens / b.batches };
  } finally {
    await model.close();
  }
}

async function main(): Promise<void> {
  const started = new Date();
  const n = process.argv.includes('--quick') ? 16 : 64;
  const maxTokens = 32;
  const offload = ['--expert-memory', '25%'];
  // This machine's speed drifts between runs: every scenario runs once per round, rounds
  // interleave them, and each keeps its best round (the highest tokens/s).
  const rounds = Number(/--rounds=(\d+)/.exec(process.argv.join(' '))?.[1] ?? 3);
  const runs: (() => Promise<Row>)[] = [
    ...[1, 4, 16].map((parallel) => () => scenario(`${n} concurrent`, n, maxTokens, parallel, true)),
    () => scenario(`${n} one at a time`, n, maxTokens, 4, false),
    ...[1, 16].map((parallel) => () => scenario(`${n} concurrent, experts 25%`, n, maxTokens, parallel, true, offload)),
  ];
  const rows: Row[] = [];
  const engine: Awaited<ReturnType<typeof library>>[] = [];
  const best = <T extends { tokensPerSecond: number; errors?: number }>(a: T | undefined, b: T) =>
    !a || (b.errors ?? 0) > (a.errors ?? 0) || b.tokensPerSecond > a.tokensPerSecond ? b : a;
  for (let r = 0; r < rounds; r++) {
    for (const [i, run] of runs.entries()) rows[i] = best(rows[i], await run());
    for (const [i, sequences] of [1, 4, 16].entries()) engine[i] = best(engine[i], await library(n, maxTokens, sequences));
    process.stderr.write(`bench:serve: round ${r + 1} of ${rounds} done\n`);
  }
  const ms = (x: number) => x.toFixed(1);
  process.stdout.write(
    [
      `embedded model, ${n} streaming chat requests of up to ${maxTokens} tokens, loopback, ${THREADS} kernel threads, best of ${rounds} rounds, ${cpus().length} x ${cpus()[0]?.model ?? ''}`,
      '| scenario | --parallel | requests | errors | tokens | wall s | tokens/s | TTFT p50 ms | TTFT p95 ms | inter-token p50 ms | inter-token p95 ms | mean batch | expert KiB read / token |',
      '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
      ...rows.map(
        (r) =>
          `| ${r.scenario} | ${r.parallel} | ${r.requests} | ${r.errors} | ${r.tokens} | ${r.seconds.toFixed(2)} | ${r.tokensPerSecond.toFixed(1)} | ${ms(r.ttftP50)} | ${ms(r.ttftP95)} | ${ms(r.itlP50)} | ${ms(r.itlP95)} | ${r.meanBatch.toFixed(2)} | ${r.expertBytesPerToken > 0 ? (r.expertBytesPerToken / 1024).toFixed(1) : '-'} |`,
      ),
      '',
      `the same ${n} requests through the library in one process (no HTTP), \`sequences\` at a time:`,
      '| sequences | tokens | wall s | tokens/s | vs 1 | mean batch (sequences) | mean batch (rows) |',
      '|--:|--:|--:|--:|--:|--:|--:|',
      ...engine.map(
        (e) =>
          `| ${e.sequences} | ${e.tokens} | ${e.seconds.toFixed(2)} | ${e.tokensPerSecond.toFixed(1)} | ${(e.tokensPerSecond / (engine[0] as (typeof engine)[0]).tokensPerSecond).toFixed(2)}x | ${e.meanBatch.toFixed(2)} | ${e.rowsPerBatch.toFixed(1)} |`,
      ),
      '',
    ].join('\n'),
  );
  for (const r of rows) if (r.firstError) process.stdout.write(`${r.scenario} (--parallel ${r.parallel}): first error: ${r.firstError}\n`);
  if (!process.argv.includes('--no-json')) process.stdout.write(`results: ${writeResults('serve', started, { ...gitInfo(), rows, engine })}\n`);
  if (rows.some((r) => r.errors > 0)) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`bench:serve: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
