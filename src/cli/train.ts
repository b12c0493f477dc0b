/**
 * `switchyard train --config <file.json>`: a thin shell over train() (src/train/trainer.ts).
 * Progress goes to stderr: a redrawn bar with loss, tokens/s and ETA on a terminal, a line
 * every 10 seconds otherwise; held-out evaluations and checkpoints are always printed.
 */
import { fmtBytes } from '../core/heap.js';
import { readTrainConfig } from '../train/config.js';
import { type TrainEvent, train } from '../train/trainer.js';
import type { GlobalOptions } from './options.js';

export interface TrainFlags extends GlobalOptions {
  config: string;
  /** Start over even when a checkpoint exists. */
  fresh?: boolean;
  /** Stop after N steps in this run (resume later). */
  stopAfter?: number;
}

export interface TrainIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number) => String(n).padStart(2, '0');
  return h ? `${h}:${two(m)}:${two(s % 60)}` : `${two(m)}:${two(s % 60)}`;
}

function heldOutText(h: Record<string, number>): string {
  return Object.entries(h)
    .map(([k, v]) => `${k} ${v.toFixed(3)} (ppl ${Math.exp(v).toFixed(1)})`)
    .join(', ');
}

/** Renders training events for people. */
export function progressPrinter(io: TrainIO): (e: TrainEvent) => void {
  const tty = io.stderr.isTTY === true;
  let lastDraw = 0;
  let barShown = false;
  const line = (text: string) => {
    if (barShown) io.stderr.write('\r\x1b[K');
    barShown = false;
    io.stderr.write(`${text}\n`);
  };
  return (e) => {
    switch (e.kind) {
      case 'stage':
        line(e.message);
        break;
      case 'tokenizer':
        if (tty && (e.merges === e.total || Date.now() - lastDraw > 200)) {
          lastDraw = Date.now();
          io.stderr.write(`\rBPE merges ${e.merges}/${e.total}`);
          barShown = true;
        }
        break;
      case 'step': {
        const now = Date.now();
        const text =
          `step ${e.step}/${e.steps} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ` +
          `| ${Math.round(e.tokensPerSecond).toLocaleString('en-US')} tok/s | ETA ${formatDuration(e.etaSeconds)}`;
        if (tty) {
          if (now - lastDraw < 100 && e.step < e.steps) return;
          lastDraw = now;
          const width = 24;
          const filled = Math.round((e.step / e.steps) * width);
          const cols = io.stderr.columns ?? 100;
          io.stderr.write(`\r${`[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}`.slice(0, cols - 1).padEnd(cols - 1)}`);
          barShown = true;
        } else if (now - lastDraw >= 10_000 || e.step === e.steps || e.step === 1) {
          lastDraw = now;
          line(text);
        }
        break;
      }
      case 'eval':
        line(`held-out loss at step ${e.step} (${e.tokens.toLocaleString('en-US')} tokens, ${formatDuration(e.seconds)}): ${heldOutText(e.heldOut)}`);
        break;
      case 'checkpoint':
        line(`checkpoint at step ${e.step}: ${e.file}`);
        break;
      case 'export':
        line(`wrote ${e.file} (${fmtBytes(e.bytes)})`);
        break;
    }
  };
}

export async function trainCommand(flags: TrainFlags, io: TrainIO = { stdout: process.stdout, stderr: process.stderr }): Promise<void> {
  const config = readTrainConfig(flags.config);
  const result = await train(config, {
    threads: flags.threads,
    kernels: flags.kernels,
    resume: !flags.fresh,
    ...(flags.stopAfter !== undefined ? { stopAfter: flags.stopAfter } : {}),
    onEvent: progressPrinter(io),
  });
  const p = result.parameters;
  io.stdout.write(
    `${config.name}: ${result.step}/${result.steps} steps, ${result.tokens.toLocaleString('en-US')} tokens in ${formatDuration(result.seconds)}; ` +
      `${(p.total / 1e6).toFixed(2)}M parameters (${(p.active / 1e6).toFixed(2)}M active per token)\n`,
  );
  if (Object.keys(result.heldOut).length) io.stdout.write(`held-out: ${heldOutText(result.heldOut)}\n`);
  if (!result.finished) io.stdout.write(`stopped early; run the same command again to resume from ${config.output.dir}/checkpoint.gguf\n`);
  if (result.gguf) io.stdout.write(`model: ${result.gguf}\n`);
}
