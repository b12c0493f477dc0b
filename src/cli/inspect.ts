/**
 * `switchyard inspect <model>`: a thin shell over summarizeGGUF / summarizeHuggingFace
 * (src/weights/summary.ts). <model> is a GGUF file or a Hugging Face checkpoint folder.
 */
import { existsSync, statSync } from 'node:fs';
import { freemem } from 'node:os';
import { InvalidArgumentError } from '../core/errors.js';
import { fmtBytes } from '../core/heap.js';
import {
  availableMemory,
  type ExpertMemoryPlan,
  expertLayout,
  minimumExpertMemory,
  parseExpertMemory,
  planExpertMemory,
} from '../experts/layout.js';
import { modelConfigFromGGUF } from '../models/config.js';
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

/** What an expert-memory budget implies for a GGUF file on this machine (the plan loadModel makes). */
export interface ExpertMemoryReport {
  readonly requested: string;
  readonly plan: ExpertMemoryPlan;
  readonly slotBytes: number;
  readonly experts: number;
  readonly expertBytes: number;
  readonly residentWeightBytes: number;
  readonly kvCacheBytes: number;
  readonly contextLength: number;
  readonly minimumBytes: number;
  readonly availableBytes: number;
}

async function expertMemoryReport(model: string, requested: string | undefined): Promise<ExpertMemoryReport | undefined> {
  if (existsSync(model) && statSync(model).isDirectory()) {
    throw new InvalidArgumentError('inspect --expert-memory: give a GGUF file (convert the checkpoint first)');
  }
  const file = await GGUFFile.open(model);
  try {
    const c = modelConfigFromGGUF(file.metadata, { tensorNames: file.tensors.keys() });
    const layout = c.moe ? expertLayout(file, c.moe.expertUsedCount) : undefined;
    if (!layout) return undefined;
    const ctx = Math.min(c.contextLength, 4096);
    const a = c.attention;
    const kvCacheBytes = a.headCountKV.reduce((n, hkv) => n + 2 * ctx * hkv * (a.keyLength + a.valueLength), 0); // f16
    const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
    const availableBytes = availableMemory(freemem(), constrained);
    const request = requested === undefined ? undefined : parseExpertMemory(requested, '--expert-memory');
    return {
      requested: requested ?? 'default',
      plan: planExpertMemory(layout, request, { available: availableBytes, otherBytes: kvCacheBytes + 512 * 2 ** 20 }),
      slotBytes: layout.slotBytes,
      experts: layout.experts,
      expertBytes: layout.expertBytes,
      residentWeightBytes: layout.residentBytes,
      kvCacheBytes,
      contextLength: ctx,
      minimumBytes: minimumExpertMemory(layout),
      availableBytes,
    };
  } finally {
    await file.close();
  }
}

export function formatExpertMemory(r: ExpertMemoryReport): string {
  const p = r.plan;
  const held = p.resident
    ? `every expert resident (${fmtBytes(r.expertBytes)})`
    : `${p.slots} of ${r.experts} experts at once (${(100 * p.share).toFixed(1)}%) in ${fmtBytes(p.budgetBytes)} of slots of ${fmtBytes(r.slotBytes)}; the rest are read from the file as tokens need them`;
  return [
    `  expert memory ${r.requested === 'default' ? 'default on this machine' : r.requested}: ${held} (${p.reason})`,
    `                resident besides: ${fmtBytes(r.residentWeightBytes)} of other weights, ${fmtBytes(r.kvCacheBytes)} of KV cache (${r.contextLength} positions, f16), activations`,
    `                minimum ${fmtBytes(r.minimumBytes)} (one layer's active experts); memory available now ${fmtBytes(r.availableBytes)}`,
  ].join('\n');
}

export async function inspect(model: string, opts: { json?: boolean; tensors?: boolean; expertMemory?: string }): Promise<void> {
  const s = await summarize(model);
  const experts = opts.expertMemory !== undefined || !opts.json ? await expertMemoryReport(model, opts.expertMemory).catch((e) => {
    if (opts.expertMemory !== undefined) throw e;
    return undefined; // the default plan is extra information: a file the runtime cannot plan still inspects
  }) : undefined;
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(experts ? { ...s, expertMemory: experts } : s, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${formatSummary(s, !!opts.tensors)}\n${experts ? `\n${formatExpertMemory(experts)}\n` : ''}`);
}
