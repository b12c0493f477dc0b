/**
 * `switchyard inspect <model>`: a thin shell over summarizeGGUF / summarizeHuggingFace
 * (src/weights/summary.ts). <model> is a GGUF file or a Hugging Face checkpoint folder.
 */
import { existsSync, statSync } from 'node:fs';
import { fmtBytes } from '../core/heap.js';
import { GGUFFile } from '../formats/gguf/reader.js';
import { type ModelSummary, summarizeGGUF, summarizeHuggingFace } from '../weights/summary.js';

/** 1234567 -> "1.23 M". */
export function fmtCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows.map((r) => `  ${r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ')}`.trimEnd());
}

export function formatSummary(s: ModelSummary, withTensors: boolean): string {
  const p = s.parameters;
  const lines = [
    `${s.file}`,
    `  format        ${s.format}${s.fileType ? `, ${s.fileType}` : ''}`,
    `  architecture  ${s.architecture}${s.name ? ` (${s.name})` : ''}`,
    `  layers        ${s.layers ?? '?'}, embedding ${s.embeddingLength ?? '?'}, vocabulary ${s.vocabularySize ?? '?'}, context ${s.contextLength ?? '?'}`,
    `  parameters    ${fmtCount(p.total)} total, ${fmtCount(p.activePerToken)} active per token`,
  ];
  if (s.experts) {
    const e = s.experts;
    lines.push(
      `  experts       ${e.count} per layer in ${e.layers} layers, ${e.used} used per token${e.shared ? `, ${e.shared} shared` : ''}; expert weights are ${((100 * p.experts) / p.total).toFixed(1)}% of parameters`,
    );
  }
  const m = s.memory;
  lines.push(
    `  memory        ${fmtBytes(m.weightBytes)} of weights: ${fmtBytes(m.denseBytes)} dense + ${fmtBytes(m.expertBytes)} experts` +
      (m.bytesPerExpert ? ` (${fmtBytes(m.bytesPerExpert)} per expert per layer)` : ''),
  );
  if (s.experts) lines.push(`                at least ${fmtBytes(m.minimumResidentBytes)} resident with an expert cache (dense + ${s.experts.used} experts)`);
  lines.push('', '  quantization mix:');
  const types = Object.entries(s.types).sort((a, b) => b[1].bytes - a[1].bytes);
  lines.push(...table([['type', 'tensors', 'parameters', 'bytes'], ...types.map(([t, v]) => [t, String(v.tensors), fmtCount(v.parameters), fmtBytes(v.bytes)])]));
  if (withTensors) {
    lines.push('', '  tensors:');
    lines.push(...table([['name', 'type', 'shape', 'bytes'], ...s.tensors.map((t) => [t.name, t.type, `[${t.shape.join(', ')}]`, fmtBytes(t.bytes)])]));
  } else {
    lines.push('', `  ${s.tensors.length} tensors (list them with --tensors)`);
  }
  return lines.join('\n');
}

async function summarize(model: string): Promise<ModelSummary> {
  if (existsSync(model) && statSync(model).isDirectory()) return summarizeHuggingFace(model);
  const file = await GGUFFile.open(model);
  try {
    return summarizeGGUF(file);
  } finally {
    await file.close();
  }
}

export async function inspect(model: string, opts: { json?: boolean; tensors?: boolean }): Promise<void> {
  const s = await summarize(model);
  process.stdout.write(`${opts.json ? JSON.stringify(s, null, 2) : formatSummary(s, !!opts.tensors)}\n`);
}
