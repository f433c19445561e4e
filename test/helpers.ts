// Shared test helpers: where the shared test assets live, and a describe() that skips (saying why)
// when they are absent, as on a user's fresh clone.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..');
export const sharedDir = process.env.CHIMERA_SHARED_DIR ?? path.resolve(repoRoot, '..', 'shared');
export const storiesDir = path.join(sharedDir, 'models', 'stories260K');
export const storiesGguf = path.join(storiesDir, 'stories260K.gguf');
export const storiesBin = path.join(storiesDir, 'stories260K.bin');
export const storiesTokenizer = path.join(storiesDir, 'tok512.bin');
export const hasStories = fs.existsSync(storiesGguf) && fs.existsSync(storiesBin) && fs.existsSync(storiesTokenizer);

/** describe() when ../shared/models/stories260K exists, otherwise a skipped block that says why. */
export const describeStories: jest.Describe = hasStories
  ? describe
  : (((name: string, fn: () => void) =>
      describe.skip(`${name} (skipped: ../shared/models/stories260K is absent)`, fn)) as unknown as jest.Describe);

export interface GoldenCase {
  prompt: string;
  prompt_ids: number[];
  output_ids: number[];
  text: string;
  top5_logits_first3?: { id: number; logit: number; prob: number }[][];
}

export function golden(): { cases: GoldenCase[] } {
  return JSON.parse(fs.readFileSync(path.join(storiesDir, 'golden.json'), 'utf8'));
}

export function tempDir(prefix = 'chimera-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function softmax(logits: Float32Array | number[]): number[] {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  const e = Array.from(logits, (x) => {
    const v = Math.exp(x - max);
    sum += v;
    return v;
  });
  return e.map((v) => v / sum);
}

export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}
