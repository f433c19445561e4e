// The architectures (plain LLaMA, Llama 3.x RoPE scaling, Qwen2, Qwen3, Phi-3) against llama.cpp: tiny
// random models of each, written as llama.cpp's converter lays them out (tools/writers/arch-model.js)
// in F32, F16 and Q8_0, must give node-llama-cpp's greedy tokens for 64 steps from a fixed prompt and
// its next-token probabilities; each model's Hugging Face twin must give the GGUF's tokens; and a
// Chimera draft trained for each must keep speculative greedy equal to plain greedy, and be refused by
// a model of another architecture with the same embedding and output weights.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { loadModel, Model, TensorError, trainDraft, UnsupportedError } from '../lib';
import { argmax, repoRoot, softmax, tempDir } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const arch = require(path.join(__dirname, '..', 'tools', 'writers', 'arch-model.js')) as {
  makeArchModel(name: string, o?: Record<string, unknown>): unknown;
  writeArchGguf(file: string, m: unknown, dtype: string): string;
  writeArchHf(dir: string, m: unknown, dtype: string): string;
  archMetadata(m: unknown): [string, string, unknown][];
};
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { writeGGUF } = require(path.join(__dirname, '..', 'tools', 'writers', 'gguf.js')) as {
  writeGGUF(file: string, spec: { metadata: unknown[]; tensors: unknown[] }): unknown;
};

interface ArchTensor { gguf: string; shape: number[]; matrix: boolean; data: unknown }
// An architecture's GGUF after `edit` changes its metadata and tensors (files llama.cpp would not make).
function writeEdited(name: string, a: string, edit: (meta: [string, string, unknown][], t: ArchTensor[]) => void): string {
  const m = arch.makeArchModel(a) as { tensors: ArchTensor[] };
  const meta = arch.archMetadata(m);
  const tensors = [...m.tensors];
  edit(meta, tensors);
  const file = path.join(dir, name);
  writeGGUF(file, { metadata: meta, tensors: tensors.map((t) => ({ name: t.gguf, shape: t.shape, dtype: 'F32', data: t.data })) });
  return file;
}

const ARCHS = ['llama', 'llama3', 'qwen2', 'qwen3', 'phi3'];
const DTYPES = ['F32', 'F16', 'Q8_0'];
const execFileP = promisify(execFile);
const PROMPT = [1, 300, 301, 302, 50, 60, 61, 200];  // BOS and a few ids of the 320-token vocabulary
const STEPS = 64;
// Largest |p_ours - p_llama.cpp| over the vocabulary and the 64 steps (llama.cpp with an F32 KV cache and
// without flash attention: see fixtures/llama-cpp-greedy.mjs). F32 and Q8_0 compute the same products
// (Q8_0 with x quantised to Q8 blocks as ggml does) and differ by summation order only (measured
// <= 2e-6); llama.cpp multiplies F16 matrices with x rounded to F16, chimera with x in F32 (measured
// <= 3e-3).
const PROB_TOL: Record<string, number> = { F32: 1e-5, F16: 6e-3, Q8_0: 1e-5 };

interface Run {
  tokens: number[];
  probs: number[][];  // (STEPS, V)
  minGap: number;     // smallest top-1 minus top-2 logit over the steps
}

// Our greedy decoding, one evaluate() per token, keeping every step's distribution.
async function oursGreedy(model: Model): Promise<Run> {
  const s = model.createSession({ contextSize: 256 });
  const run: Run = { tokens: [], probs: [], minGap: Infinity };
  let { logits } = await s.evaluate(PROMPT);
  for (let i = 0; i < STEPS; i++) {
    const t = argmax(logits);
    const sorted = Array.from(logits).sort((a, b) => b - a);
    run.minGap = Math.min(run.minGap, sorted[0] - sorted[1]);
    run.tokens.push(t);
    run.probs.push(softmax(logits));
    ({ logits } = await s.evaluate([t]));
  }
  s.dispose();
  return run;
}

// An ES module (no CommonJS entry to require.resolve), so its package file is looked for instead.
const nlcMissing = fs.existsSync(path.join(repoRoot, 'node_modules', 'node-llama-cpp', 'package.json'))
  ? ''
  : 'node-llama-cpp is not installed';
const describeNlc: jest.Describe = nlcMissing
  ? (((name: string, fn: () => void) => describe.skip(`${name} (skipped: ${nlcMissing})`, fn)) as unknown as jest.Describe)
  : describe;

// node-llama-cpp's greedy tokens and probabilities for the same prompt ids, for every GGUF of the suite
// in one child process (fixtures/llama-cpp-greedy.mjs; 2 threads: its default oversubscribes small
// machines), started once (by the describe's beforeAll).
let reference: Promise<Map<string, { tokens: number[]; probs: [number, number][][] }>> | null = null;
function llamaCppReference(): Promise<Map<string, { tokens: number[]; probs: [number, number][][] }>> {
  if (!reference) {
    const script = path.join(__dirname, 'fixtures', 'llama-cpp-greedy.mjs');
    const ggufs = Object.values(files).filter((f) => f.endsWith('.gguf'));
    reference = execFileP(process.execPath, [script, PROMPT.join(','), String(STEPS), '2', ...ggufs], {
      maxBuffer: 256 << 20,
    }).then(({ stdout }) => {
      const byFile = new Map<string, { tokens: number[]; probs: [number, number][][] }>();
      for (const line of stdout.trim().split('\n')) {
        const r = JSON.parse(line) as { file: string; tokens: number[]; probs: [number, number][][] };
        byFile.set(r.file, r);
      }
      return byFile;
    });
  }
  return reference;
}

async function llamaCppGreedy(file: string, V: number): Promise<Run> {
  const out = (await llamaCppReference()).get(file)!;
  const probs = out.probs.map((entries) => {
    const p = new Array<number>(V).fill(0);
    for (const [id, v] of entries) p[id] = v;
    return p;
  });
  return { tokens: out.tokens, probs, minGap: NaN };
}

function maxProbDiff(a: Run, b: Run): number {
  let worst = 0;
  for (let i = 0; i < Math.min(a.probs.length, b.probs.length); i++)
    for (let j = 0; j < a.probs[i].length; j++) worst = Math.max(worst, Math.abs(a.probs[i][j] - b.probs[i][j]));
  return worst;
}

let dir: string;
const files: Record<string, string> = {};
beforeAll(() => {
  dir = tempDir('chimera-arch-');
  for (const a of ARCHS) {
    const m = arch.makeArchModel(a);
    for (const dt of DTYPES) files[`${a}-${dt}`] = arch.writeArchGguf(path.join(dir, `${a}-${dt}.gguf`), m, dt);
    files[`${a}-hf`] = arch.writeArchHf(path.join(dir, `${a}-hf`), m, 'F32');
  }
});

const ours: Record<string, Run> = {};
async function oursFor(key: string): Promise<Run> {
  if (!ours[key]) {
    const model = await loadModel(files[key], { threads: 2, gpu: false });
    ours[key] = await oursGreedy(model);
    await model.dispose();
  }
  return ours[key];
}

describe.each(ARCHS)('%s', (a) => {
  test('loads with the architecture and shapes of its metadata', async () => {
    const model = await loadModel(files[`${a}-F32`], { threads: 2, gpu: false });
    const info = model.info;
    expect(info.architecture).toBe(a === 'llama3' ? 'llama' : a);
    expect(info.headSize).toBe(a === 'qwen3' ? 32 : 16);
    expect(info.ropeLayout).toBe(a.startsWith('llama') ? 'interleaved' : 'half-split');
    expect(info.tiedOutput).toBe(a === 'qwen2');
    await model.dispose();
  });

  describeNlc('against node-llama-cpp 3.21.1', () => {
    // One child process serves every architecture and dtype; on a busy machine it takes minutes.
    beforeAll(() => llamaCppReference(), 600000);
    test.each(DTYPES)('%s: 64 greedy tokens equal, probabilities within tolerance', async (dt) => {
      const mine = await oursFor(`${a}-${dt}`);
      const ref = await llamaCppGreedy(files[`${a}-${dt}`], mine.probs[0].length);
      expect(mine.minGap).toBeGreaterThan(0);  // no exact tie: argmax is well defined
      expect(mine.tokens).toEqual(ref.tokens);
      const worst = maxProbDiff(mine, ref);
      expect(worst).toBeLessThan(PROB_TOL[dt]);
    });
  });

  if (a === 'llama3') {
    test('the rope_freqs factors matter at these positions (without them the tokens differ)', async () => {
      const plain = writeEdited('llama3-nofreqs.gguf', 'llama3', (_m, t) => {
        t.splice(t.findIndex((x) => x.gguf === 'rope_freqs.weight'), 1);
      });
      const model = await loadModel(plain, { threads: 2, gpu: false });
      const without = await oursGreedy(model);
      await model.dispose();
      expect(without.tokens).not.toEqual((await oursFor('llama3-F32')).tokens);
    });
  }

  test('the Hugging Face twin gives the GGUF tokens and logits (F32)', async () => {
    const g = await oursFor(`${a}-F32`);
    const h = await oursFor(`${a}-hf`);
    expect(h.tokens).toEqual(g.tokens);
    expect(maxProbDiff(g, h)).toBeLessThan(1e-5);
  });
});

// Three heads, up to 8 guesses at depth 1: deep enough that a tree step verifies several rows with
// their own positions under the tree mask.
const TREE: number[][] = [];
for (let i = 0; i < 8; i++) TREE.push([i]);
for (let i = 0; i < 4; i++) TREE.push([0, i]);
for (let i = 0; i < 2; i++) TREE.push([0, 0, i]);
const greedy = { temperature: 0, stopOnEos: false, maxTokens: 40 };

// The fast CPU path (this process: the best the CPU has) against the single-threaded reference kernels
// (a child process with CHIMERA_CPU_KERNELS=reference), on every architecture in F32 and F16, where
// both compute with x in F32: the same greedy tokens, and probabilities within 1e-5.
describe('reference CPU kernels against the fast path', () => {
  let refRuns: Map<string, { kernels: string; tokens: number[]; logits: number[][] }>;
  beforeAll(async () => {
    const script = path.join(__dirname, 'fixtures', 'chimera-greedy.js');
    const models = ARCHS.flatMap((a) => [files[`${a}-F32`], files[`${a}-F16`]]);
    const { stdout } = await execFileP(process.execPath, [script, PROMPT.join(','), String(STEPS), ...models], {
      env: { ...process.env, CHIMERA_CPU_KERNELS: 'reference' }, maxBuffer: 256 << 20 });
    refRuns = new Map(stdout.trim().split('\n').map((l) => {
      const r = JSON.parse(l) as { file: string; kernels: string; tokens: number[]; logits: number[][] };
      return [r.file, r] as const;
    }));
  }, 600000);

  test.each(ARCHS.flatMap((a) => [`${a}-F32`, `${a}-F16`]))('%s', async (key) => {
    const fast = await oursFor(key);
    const ref = refRuns.get(files[key])!;
    expect(ref.kernels).toBe('reference');
    expect(fast.tokens).toEqual(ref.tokens);
    expect(maxProbDiff(fast, { tokens: ref.tokens, probs: ref.logits.map((l) => softmax(l)), minGap: NaN })).toBeLessThan(1e-5);
  });
});

describe('Chimera drafts on each architecture', () => {
  test.each(ARCHS)('%s: a trained draft keeps speculative greedy equal to plain greedy, with tree steps', async (a) => {
    const model = await loadModel(files[`${a}-F32`], { threads: 2, gpu: false });
    const draft = await trainDraft(model, { heads: 3, data: 'self:8', steps: 6, seqLen: 24, batch: 2, warmup: 1, seed: 3 });
    const plain = model.createSession({ contextSize: 512 });
    const spec = model.createSession({ contextSize: 512, draft, tree: TREE });
    for (const prompt of ['Once upon a time', ' and then the cat']) {
      const p = await plain.complete(prompt, greedy);
      const s = await spec.complete(prompt, greedy);
      expect(s.tokens).toEqual(p.tokens);
      expect(s.stats.steps).toBeGreaterThan(0);
      expect(s.stats.speculative).toBe(true);
    }
    plain.dispose();
    spec.dispose();
    await model.dispose();
  });

  test("a qwen3 draft is refused by a llama base with the same embedding and output (the architecture is part of the base's identity)", async () => {
    const qwen3 = await loadModel(files['qwen3-F32'], { threads: 2, gpu: false });
    const twin = await loadModel(files['qwen3-hf'], { threads: 2, gpu: false });
    // The plain llama model has qwen3's embedding and output values (same seed and tensor names).
    const llamaModel = await loadModel(files['llama-F32'], { threads: 2, gpu: false });
    const draft = await qwen3.createDraft({ heads: 2, seed: 1 });
    const file = path.join(dir, 'qwen3.chimera.safetensors');
    await draft.save(file);
    await expect(twin.loadDraft(file)).resolves.toBeDefined();  // same architecture and weights: accepted
    await expect(llamaModel.loadDraft(file)).rejects.toMatchObject({ code: 'E_INVALID_ARG', message: /qwen3/ });
    expect(() => llamaModel.createSession({ draft })).toThrow(/qwen3/);
    await Promise.all([qwen3.dispose(), twin.dispose(), llamaModel.dispose()]);
  });
});

describe('variants that are refused rather than computed wrongly', () => {
  const vec = (gguf: string, n: number): ArchTensor => ({ gguf, shape: [n], matrix: false, data: new Float32Array(n).fill(1) });
  test('Phi-3 128k long-rope factors, and RoPE scaling types other than linear, are UnsupportedError', async () => {
    const longrope = writeEdited('phi3-longrope.gguf', 'phi3', (_m, t) => {
      t.push(vec('rope_factors_long.weight', 8), vec('rope_factors_short.weight', 8));
    });
    await expect(loadModel(longrope)).rejects.toBeInstanceOf(UnsupportedError);
    const yarn = writeEdited('qwen2-yarn.gguf', 'qwen2', (m) => { m.push(['qwen2.rope.scaling.type', 'string', 'yarn']); });
    await expect(loadModel(yarn)).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: /yarn/ });
  });
  test('a missing qwen2 bias is TensorError; a tensor the architecture does not use is UnsupportedError', async () => {
    const noBias = writeEdited('qwen2-nobias.gguf', 'qwen2', (_m, t) => {
      t.splice(t.findIndex((x) => x.gguf === 'blk.1.attn_v.bias'), 1);
    });
    await expect(loadModel(noBias)).rejects.toBeInstanceOf(TensorError);
    const extra = writeEdited('phi3-extra.gguf', 'phi3', (_m, t) => { t.push(vec('blk.0.attn_k_norm.weight', 16)); });
    await expect(loadModel(extra)).rejects.toBeInstanceOf(UnsupportedError);
    const outBias = writeEdited('qwen2-obias.gguf', 'qwen2', (_m, t) => { t.push(vec('blk.0.attn_output.bias', 64)); });
    await expect(loadModel(outBias)).rejects.toBeInstanceOf(UnsupportedError);
  });
});
