// A tiny deterministic random model, written by the tests in any of the three formats
// (tools/writers), so that most suites run on a fresh clone without ../shared.
import * as path from 'node:path';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const writers = require(path.join(__dirname, '..', 'tools', 'writers', 'tiny-model.js')) as {
  makeTinyModel(o?: Record<string, unknown>): unknown;
  ggufMetadata(m: unknown): [string, string, unknown][];
  namedWeights(m: unknown): [string, { rows: number; cols: number }, boolean][];
  writeTinyModel(dir: string, m: unknown, format: string, opts?: Record<string, unknown>): { path: string; tokenizerPath?: string };
};

export type TinyFormat = 'gguf' | 'llama2c' | 'hf';

export interface TinyFiles {
  path: string;
  tokenizerPath?: string;
}

/** Writes the tiny model (seed 1 unless given) and returns its path (and tokenizer for llama2.c). */
export function writeTinyFiles(dir: string, format: TinyFormat, opts: Record<string, unknown> = {}): TinyFiles {
  const { seed = 1, std, ...writeOpts } = opts;
  const model = writers.makeTinyModel(std === undefined ? { seed } : { seed, std });
  return writers.writeTinyModel(dir, model, format, writeOpts);
}

export function writeTiny(dir: string, format: TinyFormat, opts: Record<string, unknown> = {}): string {
  return writeTinyFiles(dir, format, opts).path;
}

// eslint-disable-next-line @typescript-eslint/no-var-requires
const gguf = require(path.join(__dirname, '..', 'tools', 'writers', 'gguf.js')) as {
  writeGGUF(file: string, spec: { metadata: unknown[]; tensors: unknown[] }): unknown;
};

export type GgufMetadata = [string, string, unknown][];
export interface GgufTensor {
  name: string;
  shape: number[];
  dtype?: string;
  data?: unknown;
  type?: number;
  nbytes?: number;
  chunks?: () => Iterable<Buffer>;
}

/** Writes the tiny model as GGUF after letting `edit` change its metadata and tensor list (for bad files). */
export function writeTinyGgufEdited(file: string, edit: (meta: GgufMetadata, tensors: GgufTensor[]) => void): string {
  const m = writers.makeTinyModel({ seed: 1 });
  const meta = writers.ggufMetadata(m);
  const tensors: GgufTensor[] = writers.namedWeights(m).map(([name, t, matrix]) =>
    matrix ? { name, shape: [t.rows, t.cols], dtype: 'F32', data: t } : { name, shape: [t.cols], dtype: 'F32', data: t },
  );
  edit(meta, tensors);
  gguf.writeGGUF(file, { metadata: meta, tensors });
  return file;
}

/**
 * A tiny model whose next-token distribution hardly depends on the context: every embedding has a
 * large first coordinate, the attention and FFN outputs are zero (so the residual stream is the
 * embedding), and the final norm keeps only the first coordinate, scaled by `gain`. An untrained
 * draft's heads then rank tokens like the base does, so speculative paths are often accepted and a
 * biased verifier shows quickly; `gain` sets how peaked the distribution is.
 */
export function writeContextFreeGguf(file: string, gain: number): string {
  return writeTinyGgufEdited(file, (_meta, tensors) => {
    const get = (n: string) => tensors.find((x) => x.name === n)!;
    const E = get('token_embd.weight');
    const [V, C] = E.shape;
    const e = new Float32Array(V * C);
    let s = 7;
    const rnd = () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s / 2147483648 - 0.5;
    };
    for (let i = 0; i < V * C; i++) e[i] = i % C === 0 ? 4 : 0.4 * rnd();
    E.data = e;
    for (const t of tensors) if (/attn_output|ffn_down/.test(t.name)) t.data = new Float32Array(t.shape[0] * t.shape[1]);
    const g = new Float32Array(C);
    g[0] = gain;
    get('output_norm.weight').data = g;
  });
}
