// The same weights loaded from GGUF (F32, and F16/BF16/Q8_0 within their rounding), llama2.c and a
// Hugging Face directory (single file and sharded) give the same logits; and the same tokens.
import { loadModel, Model } from '../lib';
import { tempDir } from './helpers';
import { TinyFormat, writeTinyFiles } from './tinyModel';

const prompt = 'the cat sat on the mat, naïve café ✓';

async function logitsOf(file: { path: string; tokenizerPath?: string }) {
  const model = await loadModel(file.path, { threads: 2, tokenizer: file.tokenizerPath });
  const s = model.createSession({ contextSize: 128 });
  const tokens = model.tokenize(prompt);
  const { logits } = await s.evaluate(tokens, tokens.length);
  const info = model.info;
  await model.dispose();
  return { tokens, logits, info };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('GGUF, llama2.c and Hugging Face files of one model give the same logits (1e-4)', async () => {
  const dir = (f: string) => tempDir(`chimera-${f}-`);
  const variants: [string, TinyFormat, Record<string, unknown>][] = [
    ['llama2.c', 'llama2c', {}],
    ['hf', 'hf', {}],
    ['hf sharded', 'hf', { shards: 3 }],
  ];
  const ref = await logitsOf(writeTinyFiles(dir('gguf'), 'gguf'));
  expect(ref.info.format).toBe('gguf');
  for (const [label, format, opts] of variants) {
    const got = await logitsOf(writeTinyFiles(dir(format), format, opts));
    expect({ label, tokens: got.tokens }).toEqual({ label, tokens: ref.tokens });
    expect({ label, diff: maxDiff(got.logits, ref.logits) < 1e-4 }).toEqual({ label, diff: true });
  }
});

test('F16, BF16 and Q8_0 GGUF weights stay within their rounding of F32', async () => {
  const ref = await logitsOf(writeTinyFiles(tempDir(), 'gguf'));
  // Relative to the largest |logit| (about 6.5 here). Measured once: F16 0.19%, BF16 1.5%, Q8_0 6.6%
  // (random weights quantise badly); the kernels themselves are checked exactly in test_kernels.
  let scale = 0;
  for (const x of ref.logits) scale = Math.max(scale, Math.abs(x));
  const tolerances: Record<string, number> = { F16: 0.005 * scale, BF16: 0.04 * scale, Q8_0: 0.12 * scale };
  for (const [dtype, tol] of Object.entries(tolerances)) {
    const got = await logitsOf(writeTinyFiles(tempDir(), 'gguf', { dtype }));
    expect(got.info.dtype).toBe(dtype);
    const d = maxDiff(got.logits, ref.logits);
    expect({ dtype, ok: d < tol && d > 0 }).toEqual({ dtype, ok: true });
  }
});
