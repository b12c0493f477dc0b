/**
 * Attention in float64 from its definition, the tests' independent reference for the attention
 * kernel and its backward: query t sits at position qPos0 + t and sees keys j <= its position
 * (within `window` when set), scores scale · q·k (soft-capped when `softcap` is set), softmax
 * whose denominator also holds exp(sinks[h]) when sinks are given, grouped-query heads
 * (head h reads key-value head h / (H / Hkv)). Layouts: q [T, H, Dk], k [S, Hkv, Dk],
 * v [S, Hkv, Dv] -> [T, H, Dv].
 */
export interface Attention64Shape {
  T: number;
  H: number;
  Hkv: number;
  Dk: number;
  Dv: number;
  qPos0: number;
  window?: number;
  softcap?: number;
}

export function attention64(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  c: Attention64Shape,
  scale: number,
  sinks?: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(c.T * c.H * c.Dv);
  const group = c.H / c.Hkv;
  for (let t = 0; t < c.T; t++) {
    const pos = c.qPos0 + t;
    for (let h = 0; h < c.H; h++) {
      const g = Math.floor(h / group);
      const s: number[] = [];
      const js: number[] = [];
      for (let j = 0; j <= pos; j++) {
        if (c.window && pos - j >= c.window) continue;
        let dot = 0;
        for (let i = 0; i < c.Dk; i++) dot += q[(t * c.H + h) * c.Dk + i] * k[(j * c.Hkv + g) * c.Dk + i];
        let x = dot * scale;
        if (c.softcap) x = c.softcap * Math.tanh(x / c.softcap);
        s.push(x);
        js.push(j);
      }
      const m = Math.max(...s, sinks ? sinks[h] : Number.NEGATIVE_INFINITY);
      let sum = sinks ? Math.exp(sinks[h] - m) : 0;
      const e = s.map((x) => Math.exp(x - m));
      for (const x of e) sum += x;
      for (let d = 0; d < c.Dv; d++) {
        let acc = 0;
        for (let i = 0; i < js.length; i++) acc += (e[i] / sum) * v[(js[i] * c.Hkv + g) * c.Dv + d];
        out[(t * c.H + h) * c.Dv + d] = acc;
      }
    }
  }
  return out;
}
