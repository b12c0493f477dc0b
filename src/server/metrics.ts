/**
 * The server's counters in the Prometheus text exposition format (version 0.0.4): requests by
 * endpoint and status, prompt and generated tokens, the queue, batches, and the model's expert-cache
 * counters when it offloads experts. Every name has the `switchyard_` prefix and HELP/TYPE lines.
 * Reference: https://prometheus.io/docs/instrumenting/exposition_formats/
 */
import type { BatchStats, ExpertCacheStats } from '../api/types.js';

export class ServerMetrics {
  /** Requests answered, by "endpoint\tstatus". */
  private readonly requests = new Map<string, number>();
  promptTokens = 0;
  generatedTokens = 0;

  constructor(
    private readonly queue: () => { waiting: number; running: number },
    private readonly expertStats: () => ExpertCacheStats | undefined,
    private readonly batchStats: () => BatchStats,
  ) {}

  countRequest(endpoint: string, status: number): void {
    const key = `${endpoint}\t${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** Requests answered so far on `endpoint` with `status`. */
  requestCount(endpoint: string, status: number): number {
    return this.requests.get(`${endpoint}\t${status}`) ?? 0;
  }

  countTokens(prompt: number, generated: number): void {
    this.promptTokens += prompt;
    this.generatedTokens += generated;
  }

  /** The exposition text. */
  render(): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: [labels: string, value: number][]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
    };
    const requests = [...this.requests].map(([key, n]): [string, number] => {
      const [endpoint, status] = key.split('\t') as [string, string];
      return [`{endpoint="${escapeLabel(endpoint)}",status="${status}"}`, n];
    });
    metric('switchyard_requests_total', 'counter', 'HTTP requests answered, by endpoint and status.', requests);
    metric('switchyard_prompt_tokens_total', 'counter', 'Prompt tokens evaluated.', [['', this.promptTokens]]);
    metric('switchyard_generated_tokens_total', 'counter', 'Tokens generated.', [['', this.generatedTokens]]);
    const q = this.queue();
    metric('switchyard_queue_depth', 'gauge', 'Requests waiting for the model.', [['', q.waiting]]);
    metric('switchyard_requests_running', 'gauge', 'Requests generating now (at most the model\'s sequences).', [['', q.running]]);
    const b = this.batchStats();
    metric('switchyard_batches_total', 'counter', 'Forward steps run (each a batch of sequence steps).', [['', b.batches]]);
    metric('switchyard_batch_steps_total', 'counter', 'Sequence steps run in those batches (steps / batches = mean batch size).', [['', b.steps]]);
    metric('switchyard_batch_tokens_total', 'counter', 'Tokens (rows) evaluated in those batches.', [['', b.tokens]]);
    const e = this.expertStats();
    if (e) {
      metric('switchyard_expert_cache_hits_total', 'counter', 'Needed experts already resident in the expert cache.', [['', e.hits]]);
      metric('switchyard_expert_cache_misses_total', 'counter', 'Needed experts read from the file on demand.', [['', e.misses]]);
      metric('switchyard_expert_cache_bytes_read_total', 'counter', 'Bytes of experts read from the file (on demand and prefetched).', [
        ['', e.demandBytes + e.prefetchBytes],
      ]);
    }
    return `${lines.join('\n')}\n`;
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
