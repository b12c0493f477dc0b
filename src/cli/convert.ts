/**
 * `switchyard convert <hf-folder> <out.gguf> [--type f32|f16|bf16|q8_0|auto]`: a thin shell over
 * convertHuggingFaceToGGUF. Progress goes to stderr (a bar on a terminal, one line per tensor
 * group otherwise, so logs stay readable); the summary goes to stdout.
 */
import { InvalidArgumentError } from '../core/errors.js';
import { CONVERT_TARGET_TYPES, type ConvertTargetType } from '../weights/convert-types.js';
import { type ConvertProgress, convertHuggingFaceToGGUF } from '../weights/hf/convert.js';

export interface ConvertCommandOptions {
  /** f32, f16, bf16, q8_0 or auto (default). */
  readonly type?: string;
  /** general.name of the output. */
  readonly name?: string;
}

/** Where the command writes; tests pass their own. */
export interface ConvertCommandIO {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
}

export function parseConvertType(value: string | undefined): ConvertTargetType | 'auto' {
  if (value === undefined) return 'auto';
  const v = value.toLowerCase();
  if (v === 'auto' || (CONVERT_TARGET_TYPES as readonly string[]).includes(v)) return v as ConvertTargetType | 'auto';
  throw new InvalidArgumentError(`--type: unknown output type '${value}' (choose one of ${CONVERT_TARGET_TYPES.join(', ')}, auto)`);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

/** Reports progress: a redrawn bar on a terminal, a line per finished group otherwise. */
function progressReporter(io: ConvertCommandIO) {
  const tty = io.stderr.isTTY === true;
  let group: { name: string; tensors: number; bytes: number; startBytes: number } | undefined;
  let lastDraw = 0;
  let lastBytes = 0;
  const flushGroup = () => {
    if (group && !tty) {
      io.stderr.write(`converted ${group.name}: ${group.tensors} tensor${group.tensors === 1 ? '' : 's'}, ${formatBytes(group.bytes - group.startBytes)}\n`);
    }
  };
  return {
    update(p: ConvertProgress) {
      if (tty) {
        const now = Date.now();
        if (now - lastDraw < 100 && p.tensors < p.totalTensors) return;
        lastDraw = now;
        const width = 30;
        const frac = p.totalBytes ? p.bytes / p.totalBytes : p.tensors / p.totalTensors;
        const filled = Math.round(frac * width);
        const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
        const line = `[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${p.tensors}/${p.totalTensors} tensors ${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)} ${p.name}`;
        const cols = io.stderr.columns ?? 100;
        io.stderr.write(`\r${line.slice(0, cols - 1).padEnd(cols - 1)}`);
        return;
      }
      if (group?.name !== p.group) {
        flushGroup();
        group = { name: p.group, tensors: 0, bytes: p.bytes, startBytes: lastBytes };
      }
      group.tensors++;
      group.bytes = p.bytes;
      lastBytes = p.bytes;
    },
    done() {
      if (tty) io.stderr.write('\n');
      else flushGroup();
    },
  };
}

export async function convertCommand(
  hfFolder: string,
  outFile: string,
  opts: ConvertCommandOptions = {},
  io: ConvertCommandIO = { stdout: process.stdout, stderr: process.stderr },
): Promise<void> {
  const type = parseConvertType(opts.type);
  const started = Date.now();
  const progress = progressReporter(io);
  let result: Awaited<ReturnType<typeof convertHuggingFaceToGGUF>>;
  try {
    result = await convertHuggingFaceToGGUF(hfFolder, outFile, {
      type,
      ...(opts.name ? { name: opts.name } : {}),
      onProgress: (p) => progress.update(p),
    });
  } finally {
    progress.done();
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const types = Object.entries(result.typeCounts)
    .map(([t, n]) => `${n} ${t}`)
    .join(', ');
  const lines = [
    `wrote ${result.outFile}: ${result.architecture}, ${result.tensors} tensors (${types}), ${formatBytes(result.bytes)} of tensor data in ${seconds} s`,
  ];
  if (result.ignored.length) {
    lines.push(`left out ${result.ignored.length} tensor${result.ignored.length === 1 ? '' : 's'} on purpose: ${result.ignored.slice(0, 4).join(', ')}${result.ignored.length > 4 ? ', ...' : ''}`);
  }
  for (const w of result.warnings) lines.push(`warning: ${w}`);
  io.stdout.write(`${lines.join('\n')}\n`);
}
