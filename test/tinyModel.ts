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
