/**
 * The routing report: one self-contained HTML file (inline CSS and inline SVG; no scripts, links,
 * fonts, images or url() of any kind) drawn from a RoutingTrace and its TraceAnalysis
 * (analysis.ts): load heatmap (layers x experts), router entropy per layer, the first layer
 * pair's affinity heatmap, simulated cache hit rate vs budget per policy, local routing
 * consistency, super experts, and a strip of the first tokens coloured by their top expert.
 * Every text that comes from the trace (model name, token pieces) goes through esc().
 * Written by `switchyard analyze <trace> --html <file>`.
 */
import { strongestTransitions, type TraceAnalysis } from './analysis.js';
import type { RoutingTrace } from './trace.js';

/** HTML-escapes text for element content and quoted attributes. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const STRIP_TOKENS = 64;
const pct = (x: number, d = 1) => `${(100 * x).toFixed(d)}%`;
const f2 = (x: number) => x.toFixed(2);

/** Sequential colour scale (light to dark blue) for x in [0, 1]. */
function blues(x: number): string {
  const stops = [
    [247, 251, 255],
    [198, 219, 239],
    [107, 174, 214],
    [33, 113, 181],
    [8, 48, 107],
  ];
  const v = Math.min(1, Math.max(0, Number.isFinite(x) ? x : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(v));
  const a = stops[i] as number[];
  const b = stops[i + 1] as number[];
  const mix = (k: number) => Math.round((a[k] as number) + ((b[k] as number) - (a[k] as number)) * (v - i));
  return `rgb(${mix(0)},${mix(1)},${mix(2)})`;
}

/** A distinct light colour per expert (golden-angle hues), for the token strip. */
function expertColour(e: number): string {
  return e < 0 ? '#e5e5e5' : `hsl(${Math.round((e * 137.508) % 360)},70%,78%)`;
}

/** A discrete legend of the blues() scale from 0 to `max` (label formatter `fmt`). */
function legend(max: number, fmt: (x: number) => string, note: string): string {
  const steps = 10;
  const w = 24;
  const cells = Array.from({ length: steps }, (_, i) => `<rect x="${i * w}" y="0" width="${w}" height="12" fill="${blues((i + 0.5) / steps)}"/>`).join('');
  return `<svg width="${steps * w + 24 + 7 * note.length}" height="30" role="img" aria-label="colour scale">${cells}
<text x="0" y="26" class="t">${esc(fmt(0))}</text><text x="${steps * w}" y="26" class="t" text-anchor="end">${esc(fmt(max))}</text>
<text x="${steps * w + 12}" y="11" class="t">${esc(note)}</text></svg>`;
}

/** A heatmap of rows x cols values in [0, max], with labels and a tooltip per cell. */
function heatmap(values: number[][], max: number, o: { rowLabel: (r: number) => string; colLabel: (c: number) => string; tip: (r: number, c: number) => string; cell: number; rowEnd?: (r: number) => string }): string {
  const rows = values.length;
  const cols = values[0]?.length ?? 0;
  const cw = o.cell;
  const ch = Math.max(8, Math.min(22, o.cell));
  const left = 64;
  const top = 22;
  const every = Math.max(1, Math.ceil(14 / cw));
  const parts: string[] = [];
  for (let c = 0; c < cols; c += every) parts.push(`<text x="${left + c * cw + cw / 2}" y="${top - 6}" class="t" text-anchor="middle">${esc(o.colLabel(c))}</text>`);
  values.forEach((row, r) => {
    parts.push(`<text x="${left - 6}" y="${top + r * ch + ch / 2 + 4}" class="t" text-anchor="end">${esc(o.rowLabel(r))}</text>`);
    row.forEach((v, c) => {
      parts.push(`<rect x="${left + c * cw}" y="${top + r * ch}" width="${cw}" height="${ch}" fill="${blues(max > 0 ? v / max : 0)}"><title>${esc(o.tip(r, c))}</title></rect>`);
    });
    if (o.rowEnd) parts.push(`<text x="${left + cols * cw + 8}" y="${top + r * ch + ch / 2 + 4}" class="t">${esc(o.rowEnd(r))}</text>`);
  });
  const width = left + cols * cw + (o.rowEnd ? 90 : 10);
  return `<svg width="${width}" height="${top + rows * ch + 6}" role="img">${parts.join('')}</svg>`;
}

function loadSection(a: TraceAnalysis): string {
  const E = a.experts;
  const max = Math.max(1e-9, ...a.load.flatMap((l) => l.share));
  const map = heatmap(
    a.load.map((l) => l.share),
    max,
    {
      cell: Math.max(4, Math.min(28, Math.floor(900 / E))),
      rowLabel: (r) => `blk ${a.load[r]?.layer}`,
      colLabel: (c) => String(c),
      tip: (r, c) => `block ${a.load[r]?.layer}, expert ${c}: ${a.load[r]?.counts[c]} tokens (${pct(a.load[r]?.share[c] ?? 0)})`,
      rowEnd: (r) => `cv ${f2(a.load[r]?.cv ?? 0)}`,
    },
  );
  return `<section class="wide"><h2>Expert load (share of each layer's selections)</h2>
<p class="note">Rows: MoE layers (block index); columns: experts. Uniform load would be ${pct(1 / E)} per expert; cv = std / mean of the counts (0 = balanced).</p>
${legend(max, (x) => pct(x), `share of the layer's selections (uniform = ${pct(1 / E)})`)}
${map}</section>`;
}

function entropySection(a: TraceAnalysis): string {
  const L = a.entropy.length;
  const hmax = Math.log(a.experts);
  const scale = Math.max(hmax, ...a.entropy.map((e) => e.max), 1e-9);
  const bw = Math.max(6, Math.min(40, Math.floor(900 / Math.max(1, L))));
  const H = 180;
  const left = 44;
  const top = 14;
  const y = (v: number) => top + H - (v / scale) * H;
  const parts: string[] = [];
  for (const v of [0, scale / 2, scale]) {
    parts.push(`<line x1="${left}" x2="${left + L * bw}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${left - 4}" y="${y(v) + 4}" class="t" text-anchor="end">${v.toFixed(1)}</text>`);
  }
  a.entropy.forEach((e, i) => {
    const x = left + i * bw;
    parts.push(`<rect x="${x + 2}" y="${y(e.mean)}" width="${bw - 4}" height="${top + H - y(e.mean)}" fill="#4a89c8"><title>block ${e.layer}: mean ${e.mean.toFixed(3)}, min ${e.min.toFixed(3)}, max ${e.max.toFixed(3)} nats</title></rect>`);
    parts.push(`<line x1="${x + bw / 2}" x2="${x + bw / 2}" y1="${y(e.min)}" y2="${y(e.max)}" class="whisker"/>`);
    if (bw >= 14 || i % Math.ceil(14 / bw) === 0) parts.push(`<text x="${x + bw / 2}" y="${top + H + 14}" class="t" text-anchor="middle">${e.layer}</text>`);
  });
  parts.push(`<line x1="${left}" x2="${left + L * bw}" y1="${y(hmax)}" y2="${y(hmax)}" class="ref"/><text x="${left + L * bw + 4}" y="${y(hmax) + 4}" class="t">uniform (ln ${a.experts})</text>`);
  return `<section><h2>Router entropy per layer</h2>
<p class="note">Entropy (nats) of the router's softmax over all ${a.experts} experts, per token: bar = mean, whisker = min to max. Low = confident routing.</p>
<svg width="${left + L * bw + 130}" height="${top + H + 22}" role="img">${parts.join('')}</svg></section>`;
}

function affinitySection(a: TraceAnalysis): string {
  const af = a.affinity[0];
  if (!af) return '<section><h2>Inter-layer affinity</h2><p class="note">Only one MoE layer: no layer pair.</p></section>';
  const E = a.experts;
  const map = heatmap(af.matrix, 1, {
    cell: Math.max(4, Math.min(24, Math.floor(480 / E))),
    rowLabel: (r) => `e${r}`,
    colLabel: (c) => String(c),
    tip: (r, c) => `P(expert ${c} at block ${af.to} | expert ${r} at block ${af.from}) = ${(af.matrix[r]?.[c] ?? 0).toFixed(3)}`,
  });
  const strong = strongestTransitions(af, 5)
    .map((x) => `<li>expert ${x.from} → expert ${x.to}: ${f2(x.p)}</li>`)
    .join('');
  return `<section><h2>Inter-layer affinity, block ${af.from} → block ${af.to}</h2>
<p class="note">Row i, column j: P(expert j selected at block ${af.to} | expert i selected at block ${af.from}). Rows sum to about K = ${a.used}.</p>
${legend(1, (x) => f2(x), 'probability')}
<div class="row">${map}<div><h3>Strongest transitions</h3><ol>${strong || '<li>none</li>'}</ol></div></div></section>`;
}

const POLICY_COLOURS: Record<string, string> = { lru: '#1f77b4', lfu: '#ff7f0e', slru: '#2ca02c', optimal: '#d62728' };

/** A line chart: x positions given per point, y in [0, 1]. */
function lines(series: { name: string; colour: string; dashed?: boolean; points: { x: number; y: number; label: string }[] }[], xTicks: { x: number; label: string }[], xTitle: string, yTitle: string): string {
  const W = 400;
  const H = 200;
  const left = 48;
  const top = 12;
  const xs = [...xTicks.map((t) => t.x), ...series.flatMap((s) => s.points.map((p) => p.x))];
  const x0 = Math.min(...xs, 0);
  const x1 = Math.max(...xs, 1);
  const px = (x: number) => left + ((x - x0) / (x1 - x0 || 1)) * W;
  const py = (y: number) => top + H - Math.min(1, Math.max(0, y)) * H;
  const parts: string[] = [];
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${left}" x2="${left + W}" y1="${py(v)}" y2="${py(v)}" class="grid"/><text x="${left - 4}" y="${py(v) + 4}" class="t" text-anchor="end">${pct(v, 0)}</text>`);
  }
  for (const t of xTicks) parts.push(`<text x="${px(t.x)}" y="${top + H + 14}" class="t" text-anchor="middle">${esc(t.label)}</text>`);
  parts.push(`<text x="${left + W / 2}" y="${top + H + 30}" class="t" text-anchor="middle">${esc(xTitle)}</text>`);
  parts.push(`<text x="12" y="${top + H / 2}" class="t" text-anchor="middle" transform="rotate(-90 12 ${top + H / 2})">${esc(yTitle)}</text>`);
  series.forEach((s, i) => {
    const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    for (const p of s.points) parts.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3.5" fill="${s.colour}"><title>${esc(`${s.name}: ${p.label}`)}</title></circle>`);
    parts.push(`<rect x="${left + W + 14}" y="${top + i * 18}" width="12" height="12" fill="${s.colour}"/><text x="${left + W + 30}" y="${top + i * 18 + 10}" class="t">${esc(s.name)}</text>`);
  });
  return `<svg width="${left + W + 130}" height="${top + H + 38}" role="img">${parts.join('')}</svg>`;
}

function cacheSection(a: TraceAnalysis): string {
  if (a.budgets.length === 0) return '';
  const policies = [...new Set(a.cache.map((r) => r.policy))];
  const series = policies.map((p) => ({
    name: p,
    colour: POLICY_COLOURS[p] ?? '#555',
    dashed: p === 'optimal',
    points: a.cache.filter((r) => r.policy === p).map((r) => ({ x: r.slots, y: r.hitRate, label: `${r.slots} slots: ${pct(r.hitRate)}` })),
  }));
  const total = a.layers.length * a.experts;
  const chart = lines(
    series,
    a.budgets.map((b) => ({ x: b, label: String(b) })),
    `cache slots shared by all layers (of ${total} experts)`,
    'hit rate',
  );
  const head = a.budgets.map((b) => `<th>${b} slots</th>`).join('');
  const rows = policies.map((p) => `<tr><td>${esc(p)}</td>${a.budgets.map((b) => `<td>${pct(a.cache.find((r) => r.policy === p && r.slots === b)?.hitRate ?? 0)}</td>`).join('')}</tr>`).join('');
  return `<section><h2>Simulated expert cache hit rate</h2>
<p class="note">The trace's expert demands (token by token, layer by layer) replayed through each eviction policy; optimal = Belady's MIN (evicts the expert used furthest in the future), the bound no online policy beats.</p>
<div class="row">${chart}<table><tr><th>policy</th>${head}</tr>${rows}</table></div></section>`;
}

function consistencySection(a: TraceAnalysis): string {
  const c = a.consistency;
  if (c.segments.length === 0) return '<section><h2>Local routing consistency</h2><p class="note">Too few tokens.</p></section>';
  const ticks = c.segments.map((m, i) => ({ x: i, label: String(m) }));
  const series = [
    { name: 'SRP', colour: '#222222', points: c.srpAll.map((y, i) => ({ x: i, y, label: `segment ${c.segments[i]}: ${y.toFixed(3)}` })) },
    ...c.schMean.map((r, k) => ({
      name: `SCH ${r.multiple}K`,
      colour: ['#1b9e77', '#d95f02', '#7570b3', '#e7298a'][k % 4] as string,
      points: r.values.map((y, i) => ({ x: i, y, label: `segment ${c.segments[i]}, ${r.slots} slots: ${y.toFixed(3)}` })),
    })),
  ];
  const head = c.segments.map((m) => `<th>${m}</th>`).join('');
  const rows = [
    `<tr><td>SRP (all layers)</td>${c.srpAll.map((x) => `<td>${x.toFixed(3)}</td>`).join('')}</tr>`,
    ...c.schMean.map((r) => `<tr><td>SCH ${r.multiple}K (${r.slots} slots/layer)</td>${r.values.map((x) => `<td>${x.toFixed(3)}</td>`).join('')}</tr>`),
  ].join('');
  return `<section><h2>Local routing consistency</h2>
<p class="note">Liang et al. 2025, "Not All Models Suit Expert Offloading". SRP: best F1 of giving every token of a segment one fixed expert set. SCH: hit rate of a per-layer cache of multiple x K slots that evicts the expert with the fewest uses in the m-token segment ahead (m = 1 is LRU; mean over layers). Higher = consecutive tokens reuse experts, so offloading works better.</p>
<div class="row">${lines(series, ticks, 'segment length m (tokens)', 'SRP / SCH')}<table><tr><th>segment length</th>${head}</tr>${rows}</table></div></section>`;
}

function superSection(t: RoutingTrace, a: TraceAnalysis): string {
  const body = !t.peaks
    ? '<p class="note">The trace has no expert peaks (trace with peaks to find super experts).</p>'
    : a.superExperts.length === 0
      ? '<p class="note">None: no expert\'s peak output reaches 8x the median peak.</p>'
      : `<ul>${a.superExperts
          .map((r) => {
            const l = t.layers.indexOf(r.layer);
            const peak = t.peaks?.[l * t.experts + r.expert] ?? 0;
            return `<li>block ${r.layer}, expert ${r.expert}: peak |output| ${peak.toPrecision(4)}</li>`;
          })
          .join('')}</ul>`;
  return `<section><h2>Super experts</h2><p class="note">Experts whose largest output magnitude is an extreme outlier (at least 8x the median peak; Su et al. 2025).</p>${body}</section>`;
}

function tokenStrip(t: RoutingTrace): string {
  const N = Math.min(STRIP_TOKENS, t.tokens.length);
  const L = t.layers.length;
  const K = t.used;
  const spans: string[] = [];
  for (let i = 0; i < N; i++) {
    const top = t.ids[i * L * K] ?? -1;
    const tip = t.layers
      .map((layer, l) => {
        const ks = Array.from({ length: K }, (_, k) => (i * L + l) * K + k).filter((at) => (t.ids[at] as number) >= 0);
        return `block ${layer}: ${ks.map((at) => `e${t.ids[at]} ${(t.weights[at] as number).toFixed(2)}`).join(', ')}`;
      })
      .join('\n');
    const piece = (t.pieces[i] ?? '').replace(/\n/g, '↵').replace(/\t/g, '→');
    spans.push(`<span class="tok" style="background:${expertColour(top)}" title="${esc(`token ${i} (id ${t.tokens[i]}), top expert ${top}\n${tip}`)}">${esc(piece)}</span>`);
  }
  const used = [...new Set(Array.from({ length: N }, (_, i) => t.ids[i * L * K] as number))].sort((a, b) => a - b);
  const chips = used.map((e) => `<span class="tok" style="background:${expertColour(e)}">e${e}</span>`).join(' ');
  return `<section class="wide"><h2>Tokens by their top expert at block ${t.layers[0]}</h2>
<p class="note">The first ${N} tokens, coloured by the first expert they selected at the first MoE layer; hover a token for its experts and weights at every layer.</p>
<div class="strip">${spans.join('')}</div><p class="note">Colours: ${chips}</p></section>`;
}

const CSS = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:16px 28px}header h1{margin:0 0 4px;font-size:22px}header p{margin:0;color:#c9cfdb}
main{padding:16px 28px;display:grid;grid-template-columns:repeat(auto-fit,minmax(600px,1fr));gap:16px;align-items:start}
.wide{grid-column:1/-1}svg{display:block}
section{background:#fff;border:1px solid #dfe3ea;border-radius:8px;padding:12px 18px;overflow-x:auto}
h2{font-size:17px;margin:4px 0 6px}h3{font-size:14px;margin:4px 0}.note{color:#5b6475;margin:4px 0 8px;max-width:1000px}
.row{display:flex;gap:20px;align-items:flex-start;flex-wrap:wrap}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}td,th{border:1px solid #dfe3ea;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
svg .t{font-size:11px;fill:#1d2330}svg .grid{stroke:#e3e6ec}svg .ref{stroke:#d62728;stroke-dasharray:4 3}svg .whisker{stroke:#1d2330;stroke-width:1.5}
.strip{line-height:1.6;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}.tok{display:inline-block;white-space:pre;padding:0 2px;margin:1px;border-radius:3px}
ol,ul{margin:4px 0;padding-left:22px}`;

export function renderReport(t: RoutingTrace, a: TraceAnalysis, options: { title?: string } = {}): string {
  const title = options.title ?? `Routing of ${t.model}`;
  const summary = `${t.architecture} · ${t.tokens.length} tokens · ${t.layers.length} MoE layers · ${t.experts} experts · ${t.used} per token`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>${esc(title)}</h1><p>${esc(summary)}</p></header>
<main>
${loadSection(a)}
${entropySection(a)}
${affinitySection(a)}
${cacheSection(a)}
${consistencySection(a)}
${superSection(t, a)}
${tokenStrip(t)}
</main>
</body>
</html>
`;
}
