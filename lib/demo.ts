// `chimera demo`: coherent text from stories260K with its Chimera draft, then a measured speedup on a
// memory-bound model: stories260K widened exactly to the TinyLlama-1.1B shape (built once into a cache
// folder), where verifying a few drafted tokens costs about one plain step. Outputs are compared token
// for token with plain decoding.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import type { Draft } from './draft';
import { loadModel, Model } from './model';

const ROOT = nodePath.join(__dirname, '..');
export const storiesModelPath = nodePath.join(ROOT, 'models', 'stories260K.gguf');
export const storiesDraftPath = nodePath.join(ROOT, 'models', 'stories260K.chimera.safetensors');

export interface DemoOptions {
  tree: string | number[][];
  tokens: number;
  threads?: number;
  /** Folder for the wide model (default $CHIMERA_CACHE_DIR, else $XDG_CACHE_HOME/chimera-llm or ~/.cache/chimera-llm). */
  cache?: string;
  /** Skip the wide model (text only). */
  small?: boolean;
  /** Progress lines and the progress bar (stderr). */
  log: (line: string) => void;
  progress: (fraction: number, what: string) => void;
}

export interface DemoRun {
  prompt: string;
  text: string;
  identical: boolean;
  plainTokensPerSecond: number;
  chimeraTokensPerSecond: number;
  tokensPerStep: number;
}

export interface DemoResult {
  stories: DemoRun[];
  wide?: { model: string; draftBytes: number; baseBytes: number; runs: DemoRun[]; speedup: number };
}

const STORY_PROMPTS = ['Once upon a time', 'Lily and Tom went to the park'];
const WIDE_PROMPTS = ['The cat sat on', 'One day, a little boy named Tim', 'Sara had a red ball'];

export function defaultCacheDir(): string {
  if (process.env.CHIMERA_CACHE_DIR) return process.env.CHIMERA_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || nodePath.join(os.homedir(), '.cache');
  return nodePath.join(base, 'chimera-llm');
}

async function compare(model: Model, draft: Draft, tree: DemoOptions['tree'], prompts: string[], n: number): Promise<DemoRun[]> {
  const plain = model.createSession({ contextSize: 512 });
  const spec = model.createSession({ contextSize: 512, draft, tree });
  const opts = { temperature: 0, maxTokens: n, stopOnEos: false, append: false };
  try {
    // Warm-up: the weights reach the page cache, and tree 'auto' measures this machine's costs.
    await plain.complete('Once upon a time', { ...opts, maxTokens: 16 });
    await spec.complete('Once upon a time, there was a little girl', { ...opts, maxTokens: 64 });
    const runs: DemoRun[] = [];
    for (const prompt of prompts) {
      const a = await plain.complete(prompt, opts);
      const b = await spec.complete(prompt, opts);
      runs.push({
        prompt, text: a.text, identical: a.tokens.join() === b.tokens.join(),
        plainTokensPerSecond: a.stats.tokensPerSecond, chimeraTokensPerSecond: b.stats.tokensPerSecond,
        tokensPerStep: b.stats.steps ? b.stats.tokensPerStep ?? 0 : 0,
      });
    }
    return runs;
  } finally {
    plain.dispose();
    spec.dispose();
  }
}

function buildWide(dir: string, o: DemoOptions): { model: string; draft: string } {
  // The construction ships as plain JS beside the compiled library (tools/wide-stories).
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const wide = require(nodePath.join(ROOT, 'tools', 'wide-stories', 'make.js')) as {
    makeWide(a: unknown, onProgress?: (f: number) => void): { model: string; draft: string }[];
    parseArgs(argv: string[]): unknown;
    wideNames(a: unknown): { model: string; draft: string };
  };
  const args = wide.parseArgs(['--dtype', 'f16', '--out', dir, '--quiet']) as Record<string, unknown>;
  const names = wide.wideNames({ ...args, dtype: 'f16' });
  if (!fs.existsSync(names.model) || !fs.existsSync(names.draft)) {
    o.log(`Building stories260K widened exactly to the TinyLlama-1.1B shape (dim 2048, 22 layers, vocabulary 32000;\n` +
      `2.2 GB in F16), once, into ${dir}. It computes stories260K's function with 4,000x the weights, so\n` +
      `every token reads 2.2 GB: a memory-bound model, like the 1B models people run on CPUs.`);
    fs.mkdirSync(dir, { recursive: true });
    wide.makeWide(args, (f) => o.progress(f, 'wide-stories260K-f16'));
    o.progress(1, 'wide-stories260K-f16');
  }
  return names;
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const result: DemoResult = { stories: [] };
  const small = await loadModel(storiesModelPath, { threads: o.threads });
  try {
    const draft = await small.loadDraft(storiesDraftPath);
    result.stories = await compare(small, draft, o.tree, STORY_PROMPTS, o.tokens);
    draft.dispose();
  } finally {
    await small.dispose();
  }
  if (o.small) return result;
  const files = buildWide(o.cache ?? defaultCacheDir(), o);
  const model = await loadModel(files.model, { threads: o.threads });
  try {
    // Q8_0: the draft reads 103 MB per step, under 5% of the base model's 2.2 GB.
    const draft = await model.loadDraft(files.draft, { dtype: 'Q8_0' });
    const runs = await compare(model, draft, o.tree, WIDE_PROMPTS, Math.min(o.tokens, 64));
    const tp = runs.reduce((s, r) => s + 1 / r.plainTokensPerSecond, 0), tc = runs.reduce((s, r) => s + 1 / r.chimeraTokensPerSecond, 0);
    result.wide = { model: nodePath.basename(files.model), draftBytes: draft.info.weightBytes,
      baseBytes: model.info.weightBytes, runs, speedup: tp / tc };
    draft.dispose();
  } finally {
    await model.dispose();
  }
  return result;
}

export function formatDemo(r: DemoResult, tree: DemoOptions['tree']): string {
  const treeName = typeof tree === 'string' ? tree : 'custom';
  const line = (x: DemoRun) => `  plain ${x.plainTokensPerSecond.toFixed(1)} tok/s | Chimera ${x.chimeraTokensPerSecond.toFixed(1)} tok/s, ` +
    `${x.tokensPerStep > 0 ? `${x.tokensPerStep.toFixed(2)} tokens per tree step` : 'no tree steps'}, ` +
    `${(x.chimeraTokensPerSecond / x.plainTokensPerSecond).toFixed(2)}x | same output: ${x.identical ? 'yes' : 'NO'}`;
  let out = `stories260K (260K parameters, Karpathy's llama2.c, MIT) with its Chimera draft, tree '${treeName}':\n\n`;
  for (const x of r.stories) out += `> ${x.prompt}${x.text}\n${line(x)}\n\n`;
  out += 'A model this small is compute-bound: verifying drafted tokens costs about as much as generating them,\n' +
    "so tree 'auto' mostly decodes plainly here.\n";
  if (r.wide) {
    out += `\n${r.wide.model}: the same model widened to the TinyLlama-1.1B shape ` +
      `(${(r.wide.baseBytes / 1e9).toFixed(1)} GB per token; draft ${(r.wide.draftBytes / 1e6).toFixed(0)} MB, Q8_0):\n\n`;
    for (const x of r.wide.runs) out += `> ${x.prompt}${x.text.split('\n')[0].slice(0, 100)}...\n${line(x)}\n\n`;
    out += `Chimera: ${r.wide.speedup.toFixed(2)}x plain decoding on this machine, with identical output` +
      `${r.wide.runs.every((x) => x.identical) ? '' : ' (NOT identical: please report this)'}.\n`;
  }
  return out;
}
