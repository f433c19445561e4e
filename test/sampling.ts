// Sampling-exactness helpers: the joint law of a session's first tokens over many seeded draws, and a
// two-sample chi-square test between two such laws.
import type { Session } from '../lib';

export async function firstThree(session: Session, n: number, opts: Record<string, number>, prompt = 'the') {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await session.complete(prompt, { ...opts, maxTokens: 3, seed: i + 1, stopOnEos: false, append: false });
    // Joint outcome of the first 3 tokens, plus each later position's own token: the marginals
    // concentrate the counts, so a biased verifier shows with a few thousand draws.
    for (const key of [r.tokens.join(','), `2:${r.tokens[1]}`, `3:${r.tokens[2]}`])
      counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

// Two-sample chi-square over outcome cells with pooled count >= 10 (the rest pooled into one cell).
// The cell families (joint triple, position 2, position 3) overlap, so the 0.999 threshold is an
// approximation; the draws use fixed seeds, so the outcome is deterministic. Measured margins: the
// exact verifier stays below 0.85x the threshold, the lossy one lands above 30x it.
export function chiSquare(a: Map<string, number>, b: Map<string, number>, n: number): { stat: number; df: number } {
  const keys = new Set([...a.keys(), ...b.keys()]);
  let stat = 0, df = -1, restA = 0, restB = 0;
  for (const k of keys) {
    const x = a.get(k) ?? 0, y = b.get(k) ?? 0;
    if (x + y < 10) { restA += x; restB += y; continue; }
    stat += ((x - y) ** 2) / (x + y);
    df++;
  }
  if (restA + restB > 0) { stat += ((restA - restB) ** 2) / (restA + restB); df++; }
  void n;
  return { stat, df };
}

// Upper 0.999 quantile of chi-square with df degrees of freedom (Wilson-Hilferty).
export function chiCritical(df: number): number {
  const z = 3.09;
  return df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
}

