// The HTML routing report (src/router/report.ts): one self-contained file (no external resource:
// no src/href with a scheme or //, no url(), @import, <link> or <script src>), well-formed enough
// (one <html>, balanced <svg> and <section>), every trace text escaped (a token piece that is a
// script tag, quotes in tooltips, the model name), and each section present.
import { describe, expect, it } from 'vitest';
import { analyzeTrace } from '../../src/router/analysis.js';
import { esc, renderReport } from '../../src/router/report.js';
import { type RoutingTrace, TraceRecorder } from '../../src/router/trace.js';
import { rng } from '../helpers/random.js';

const EVIL = '<script>alert(1)</script>';

function trace(layers: number[], peaks: boolean): RoutingTrace {
  const E = 4;
  const K = 2;
  const N = 80;
  const r = rng(3);
  const rec = new TraceRecorder({ model: 'models/<b>tiny</b>.gguf', architecture: 'qwen3moe', layers, experts: E, used: K });
  const pieces = Array.from({ length: N }, (_, t) => [EVIL, ' a&b', '"q\'', '\n', 'url(x)'][t] ?? `w${t}`);
  rec.beginStep(Array.from({ length: N }, (_, t) => t), pieces);
  for (const layer of layers) {
    const logits = Float32Array.from({ length: N * E }, () => 4 * r() - 2);
    const ids = new Int32Array(N * K);
    for (let t = 0; t < N; t++) {
      const row = Array.from(logits.subarray(t * E, (t + 1) * E));
      const order = [0, 1, 2, 3].sort((a, b) => (row[b] as number) - (row[a] as number));
      ids[t * K] = order[0] as number;
      ids[t * K + 1] = order[1] as number;
    }
    rec.record(layer, ids, new Float32Array(N * K).fill(0.5), logits);
    if (peaks) rec.recordPeaks(layer, layer === layers[0] ? [1, 1, 50, 1] : [1, 1.5, 1, 1]);
  }
  return rec.finish();
}

/** Markup outside the text content of the token strip and tooltips: tags only. */
const tags = (html: string) => html.match(/<[^>]*>/g) ?? [];

describe('renderReport', () => {
  const t = trace([0, 2, 5], true);
  const html = renderReport(t, analyzeTrace(t), { title: 'Report "one" <two>' });

  it('loads no external resource', () => {
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?\s*([a-z][a-z0-9+.-]*:|\/\/)/i);
    expect(html).not.toMatch(/\bsrc\s*=/i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/<script\b/i);
    expect(html).not.toMatch(/@import/i);
    // url( appears only as escaped token text (the piece 'url(x)'), never in markup or CSS.
    for (const tag of tags(html)) expect(tag).not.toMatch(/url\(/i);
    const css = html.slice(html.indexOf('<style>'), html.indexOf('</style>'));
    expect(css).not.toMatch(/url\(|@import|@font-face/i);
    expect(html).not.toMatch(/<(img|iframe|object|embed|video|audio|image|use)\b/i);
  });

  it('is well-formed enough: one document, balanced svg and sections', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html.match(/<html\b/g)).toHaveLength(1);
    expect(html.match(/<\/html>/g)).toHaveLength(1);
    expect(html.match(/<body\b/g)).toHaveLength(1);
    const open = html.match(/<svg\b/g)?.length ?? 0;
    expect(open).toBeGreaterThanOrEqual(6);
    expect(html.match(/<\/svg>/g)?.length).toBe(open);
    expect(html.match(/<section\b/g)?.length).toBe(html.match(/<\/section>/g)?.length);
  });

  it('escapes every text from the trace', () => {
    expect(html).not.toContain(EVIL);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain(' a&amp;b');
    expect(html).toContain('&quot;q&#39;');
    expect(html).not.toContain('<b>tiny</b>');
    expect(html).toContain('Report &quot;one&quot; &lt;two&gt;');
    // Attribute values never contain a raw quote of their own kind.
    for (const tag of tags(html)) expect(tag.match(/"/g)?.length ?? 0, tag.slice(0, 80)).toSatisfy((n: number) => n % 2 === 0);
  });

  it('has every section: load, entropy, affinity, cache, consistency, super experts, token strip', () => {
    for (const h of ['Expert load', 'Router entropy per layer', 'Inter-layer affinity, block 0 → block 2', 'Simulated expert cache hit rate', 'Local routing consistency', 'Super experts', 'Tokens by their top expert']) {
      expect(html).toContain(h);
    }
    expect(html).toContain('block 0, expert 2: peak');
    // 64 tokens in the strip, each with a tooltip listing its experts at all three layers.
    const strip = html.match(/<span class="tok" style="[^"]*" title="token \d+/g) ?? [];
    expect(strip).toHaveLength(64);
    expect(html).toMatch(/title="token 0 \(id 0\), top expert \d\nblock 0: e\d 0\.50, e\d 0\.50\nblock 2: [^"]*\nblock 5: /);
    for (const p of ['lru', 'lfu', 'slru', 'optimal']) expect(html).toContain(`<td>${p}</td>`);
  });

  it('renders a single-layer trace without peaks', () => {
    const one = trace([3], false);
    const page = renderReport(one, analyzeTrace(one));
    expect(page).toContain('Only one MoE layer');
    expect(page).toContain('no expert peaks');
    expect(page.match(/<svg\b/g)?.length).toBe(page.match(/<\/svg>/g)?.length);
  });
});

describe('esc', () => {
  it('escapes the five HTML specials and nothing else', () => {
    expect(esc(`<a href="x">'&'</a> é ∑`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt; é ∑');
  });
});
