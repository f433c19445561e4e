// Q4_0 and k-quant GGUFs (Q4_K, Q5_K, Q6_K, mixed per tensor as llama-quantize's Q4_K_M / Q5_K_M / Q6_K
// files are) against llama.cpp: a tiny random model written in each mix must load with the intended
// types and follow node-llama-cpp's greedy path (its KV cache F32 and flash attention off, so only the
// weights' arithmetic is compared). Both engines quantise x the same way before each matmul (Q8_0 blocks
// or Q8_K) and sum exact integers, so they differ only where float rounding flips an activation's
// rounding: measured worst 0.04 in log-probability over the top 5 tokens of 64 steps (2e-6 for F32, the
// control). Hence, teacher-forced on llama.cpp's greedy tokens: every step's top-5 log-probabilities
// agree within 0.08 (1e-4 for F32), chimera's argmax equals llama.cpp's token at every step whose top-2
// gap exceeds twice that, and free-running greedy decoding gives llama.cpp's tokens up to the first step
// without such a gap. Weights have std 0.06 (~1/sqrt(width)): larger weights amplify each flip through
// the layers. The same check runs for llama3, qwen2, qwen3 and phi3 models in Q4_K_M. Also: speculative
// greedy == plain greedy on a Q4_K_M model with a Q4_K draft, and a clear error for shapes the block
// types cannot hold.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel, type Model } from '../lib';
import { repoRoot, tempDir } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const archWriters = require(path.join(repoRoot, 'tools', 'writers', 'arch-model.js')) as {
  makeArchModel(name: string, o: Record<string, unknown>): unknown;
  writeArchGguf(file: string, m: unknown, dtype: string): string;
};
// eslint-disable-next-line @typescript-eslint/no-var-requires
const tiny = require(path.join(repoRoot, 'tools', 'writers', 'tiny-model.js')) as {
  makeTinyModel(o: Record<string, unknown>): unknown;
  writeTinyModel(dir: string, m: unknown, format: string, opts: Record<string, unknown>): { path: string };
};

const MIXES = ['F32', 'Q4_0', 'Q4_K_S', 'Q4_K_M', 'Q5_K_M', 'Q6_K'] as const;
const PROMPT = [1, 45, 67, 89, 120];
const STEPS = 64;
const LOGP_TOL: Record<string, number> = { F32: 1e-4 };
const DEFAULT_LOGP_TOL = 0.08;
// Width 256 and FFN 512: every matrix has whole 256-value super-blocks. L = 2: in Q4_K_M, layer 0's
// attn_v and ffn_down take Q6_K (first eighth of the layers), layer 1's stay Q4_K.
const SHAPE = { seed: 7, C: 256, L: 2, NH: 4, NKV: 2, HD: 512, V: 320, std: 0.06 };
const EXPECTED_TYPES: Record<(typeof MIXES)[number], Record<string, number>> = {
  F32: { F32: 16 },
  Q4_0: { Q4_0: 15, Q6_K: 1 },
  Q4_K_S: { Q4_K: 15, Q6_K: 1 },
  Q4_K_M: { Q4_K: 13, Q6_K: 3 },
  Q5_K_M: { Q5_K: 13, Q6_K: 3 },
  Q6_K: { Q6_K: 16 },
};

let dir: string;
const files: Record<string, string> = {};

beforeAll(() => {
  dir = tempDir('chimera-quant-');
  const model = tiny.makeTinyModel(SHAPE);
  for (const mix of MIXES) files[mix] = tiny.writeTinyModel(dir, model, 'gguf', { dtype: mix, fileName: `${mix}.gguf` }).path;
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (x) => x - lse);
}

const argmax = (a: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
};

interface Reference {
  tokens: number[];
  probs: number[][];
}

function llamaCppGreedy(models: string[], prompt: number[], steps: number): Record<string, Reference> {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'fixtures', 'llama-cpp-greedy.mjs'), prompt.join(','),
    String(steps), '2', ...models], { encoding: 'utf8', timeout: 240_000, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`node-llama-cpp failed (${String(r.status)}): ${r.stderr}`);
  const out: Record<string, Reference> = {};
  for (const line of r.stdout.trim().split('\n')) {
    const o = JSON.parse(line) as { file: string; tokens: number[]; probs: [number, number][][] };
    const probs = o.probs.map((step) => {
      const p = new Array<number>(SHAPE.V).fill(0);
      for (const [id, prob] of step) p[id] = prob;
      return p;
    });
    out[o.file] = { tokens: o.tokens, probs };
  }
  return out;
}

interface Agreement {
  worstLogp: number;
  clearSteps: number;
  clearMismatches: number[];
  freeRunPrefix: number;
  freeRunMatches: boolean;
}

// Teacher-forced on the reference's tokens, then free-running up to its first near tie.
async function compareWith(model: Model, ref: Reference, tol: number): Promise<Agreement> {
  const a: Agreement = { worstLogp: 0, clearSteps: 0, clearMismatches: [], freeRunPrefix: STEPS, freeRunMatches: true };
  const forced = model.createSession();
  let { logits } = await forced.evaluate(PROMPT);
  for (let i = 0; i < STEPS; i++) {
    const lp = logSoftmax(logits);
    const p = ref.probs[i];
    const top = [...p.keys()].sort((x, y) => p[y] - p[x]).slice(0, 5);
    for (const v of top) a.worstLogp = Math.max(a.worstLogp, Math.abs(lp[v] - Math.log(p[v])));
    if (Math.log(p[top[0]]) - Math.log(p[top[1]]) > 2 * tol) {
      a.clearSteps++;
      if (argmax(lp) !== ref.tokens[i]) a.clearMismatches.push(i);
    } else if (a.freeRunPrefix === STEPS) {
      a.freeRunPrefix = i;
    }
    ({ logits } = await forced.evaluate([ref.tokens[i]]));
  }
  forced.dispose();
  const free = model.createSession();
  ({ logits } = await free.evaluate(PROMPT));
  for (let i = 0; i < a.freeRunPrefix; i++) {
    const t = argmax(logits);
    if (t !== ref.tokens[i]) a.freeRunMatches = false;
    ({ logits } = await free.evaluate([t]));
  }
  free.dispose();
  return a;
}

// The assertions of both llama.cpp comparisons: within tol, no argmax mismatch at a clear gap, the same
// free-running prefix, and enough clear steps (on a model that is not stuck on one token) to prove it.
async function expectFollows(label: string, model: Model, ref: Reference, tol: number): Promise<void> {
  const a = await compareWith(model, ref, tol);
  expect(new Set(ref.tokens).size).toBeGreaterThan(8);
  expect({ label, worstWithinTol: a.worstLogp <= tol, clearMismatches: a.clearMismatches, freeRun: a.freeRunMatches })
    .toEqual({ label, worstWithinTol: true, clearMismatches: [], freeRun: true });
  expect(a.clearSteps).toBeGreaterThanOrEqual(24);
}

describe('Q4_0 and k-quant GGUFs', () => {
  test('each mix loads with the types llama-quantize would give it', async () => {
    for (const mix of MIXES) {
      const model = await loadModel(files[mix], { threads: 2 });
      try {
        expect([mix, model.info.tensorTypes]).toEqual([mix, EXPECTED_TYPES[mix]]);
      } finally {
        model.dispose();
      }
    }
  });

  test('each mix follows llama.cpp (node-llama-cpp) for 64 greedy steps', async () => {
    const ref = llamaCppGreedy(MIXES.map((m) => files[m]), PROMPT, STEPS);
    for (const mix of MIXES) {
      const model = await loadModel(files[mix], { threads: 2 });
      try {
        await expectFollows(mix, model, ref[files[mix]], LOGP_TOL[mix] ?? DEFAULT_LOGP_TOL);
      } finally {
        model.dispose();
      }
    }
  }, 300_000);

  test.each(['llama3', 'qwen2', 'qwen3', 'phi3'])('%s as Q4_K_M follows llama.cpp for 64 greedy steps', async (name) => {
    // Untied output: a tiny tied qwen2 repeats its input token, which would prove little.
    const m = archWriters.makeArchModel(name, { seed: 12, C: 256, L: 2, NH: 4, NKV: 2, HD: 512, std: SHAPE.std,
      outStd: SHAPE.std, tied: false });
    const file = archWriters.writeArchGguf(path.join(dir, `${name}-Q4_K_M.gguf`), m, 'Q4_K_M');
    const ref = llamaCppGreedy([file], PROMPT, STEPS)[file];
    const model = await loadModel(file, { threads: 2 });
    try {
      expect(Object.keys(model.info.tensorTypes).sort()).toEqual(['Q4_K', 'Q6_K']);
      await expectFollows(name, model, ref, DEFAULT_LOGP_TOL);
    } finally {
      model.dispose();
    }
  }, 120_000);

  test('a Q4_K_M model and a Q4_K draft: speculative greedy equals plain greedy, with tree steps run', async () => {
    const model = await loadModel(files.Q4_K_M, { threads: 2 });
    try {
      const draft = await model.createDraft({ seed: 3, dtype: 'Q4_K' });
      expect(draft.info.dtype).toBe('Q4_K');
      const plain = await model.createSession().complete('Once upon', { maxTokens: 40, temperature: 0, stopOnEos: false });
      const spec = model.createSession({ draft, tree: 'chain-3' });
      const fast = await spec.complete('Once upon', { maxTokens: 40, temperature: 0, stopOnEos: false });
      expect(fast.tokens).toEqual(plain.tokens);
      expect(fast.stats.steps).toBeGreaterThan(0);
    } finally {
      model.dispose();
    }
  }, 120_000);

  test('a k-quant matrix whose rows are not whole super-blocks is refused with a clear error', async () => {
    const model = tiny.makeTinyModel({ ...SHAPE, C: 64, HD: 128 });
    // The writer refuses to encode it: rows of 64 values cannot be Q4_K.
    expect(() => tiny.writeTinyModel(dir, model, 'gguf', { dtype: 'Q4_K', fileName: 'bad.gguf' })).toThrow(/multiple of 256/);
  });
});
