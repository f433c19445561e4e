// What a hostile caller, a terminated worker thread or a malformed file must not do to the process:
// each case is a finding that once crashed, hung or exhausted it, and now gets a typed error.
import { spawnSync, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  FileNotFoundError,
  FormatError,
  InvalidArgumentError,
  loadModel,
  Model,
  NumericError,
  TensorError,
} from '../lib';
import { repoRoot, tempDir } from './helpers';
import { writeTiny, writeTinyGgufEdited } from './tinyModel';

let dir: string;
let model: Model;
beforeAll(async () => {
  dir = tempDir('chimera-safety-');
  model = await loadModel(writeTiny(dir, 'gguf'), { threads: 1 });
});
afterAll(async () => {
  await model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a draft made for another model', () => {
  test('is refused by createSession, in both directions and for a same-shape model', async () => {
    const other = await loadModel(writeTiny(path.join(dir, 'seed2'), 'gguf', { seed: 2 }), { threads: 1 });
    const bigger = await loadModel(undefined, { threads: 1 });  // the default model: another shape
    const ownDraft = await model.createDraft({ heads: 2 });
    const sameShapeDraft = await other.createDraft({ heads: 2 });
    const biggerDraft = await bigger.createDraft({ heads: 2 });
    try {
      expect(() => model.createSession({ draft: biggerDraft })).toThrow(InvalidArgumentError);
      expect(() => model.createSession({ draft: biggerDraft })).toThrow(/made for another base model/);
      expect(() => bigger.createSession({ draft: ownDraft, tree: 'chain-2' })).toThrow(InvalidArgumentError);
      expect(() => model.createSession({ draft: sameShapeDraft, tree: 'chain-1' })).toThrow(/weights differ/);
      // The right pairing still works, and runs tree steps.
      const s = model.createSession({ draft: ownDraft, tree: 'chain-2', contextSize: 64 });
      const r = await s.complete('the', { maxTokens: 8, temperature: 0 });
      expect(r.stats.steps).toBeGreaterThan(0);
      s.dispose();
    } finally {
      for (const d of [ownDraft, sameShapeDraft, biggerDraft]) d.dispose();
      await other.dispose();
      await bigger.dispose();
    }
  });
});

describe('a worker thread terminated during a native call', () => {
  const fixture = path.join(repoRoot, 'test', 'fixtures', 'terminate-worker.js');
  test.each(['generate', 'evaluate', 'loadModel', 'createDraft'])(
    '%s: the worker ends, its call is cancelled, the process lives',
    (call) => {
      const r = spawnSync(process.execPath, [fixture, call], { encoding: 'utf8', timeout: 60000 });
      expect(r.signal).toBeNull();
      expect(r.stderr).not.toMatch(/terminate called|Aborted|core dumped/);
      expect(r.status).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(out.mainAlive).toBe(true);
      expect(out.exitCode).toBe(1);  // terminate()'s exit code
      // Cancelled, not run to the end: a 50,000-token evaluate alone takes minutes.
      expect(out.terminateMs).toBeGreaterThanOrEqual(0);
      expect(out.terminateMs).toBeLessThan(5000);
    },
  );
});

describe('files that are not regular files, or claim more than they hold', () => {
  const mkfifo = (p: string) => execFileSync('mkfifo', [p]);

  test('a FIFO is refused at once, and does not block the thread pool', async () => {
    const fifo = path.join(dir, 'fifo.gguf');
    mkfifo(fifo);
    const t0 = Date.now();
    for (let i = 0; i < 4; i++) await expect(loadModel(fifo)).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(loadModel(fifo)).rejects.toThrow(/not a regular file/);
    // A llama2.c tokenizer and an HF directory's JSON files are checked the same way.
    await expect(loadModel(writeTiny(path.join(dir, 'l2c'), 'llama2c'), { tokenizer: fifo })).rejects.toBeInstanceOf(
      FileNotFoundError,
    );
    const hf = writeTiny(path.join(dir, 'hf-fifo'), 'hf');
    fs.rmSync(path.join(hf, 'config.json'));
    mkfifo(path.join(hf, 'config.json'));
    await expect(loadModel(hf)).rejects.toBeInstanceOf(FileNotFoundError);
    expect(Date.now() - t0).toBeLessThan(5000);
    // libuv's pool is free: an unrelated fs call completes.
    await expect(fs.promises.readFile(__filename, 'utf8')).resolves.toContain('FIFO');
  });

  test('a config.json that is a directory is FileNotFoundError saying so', async () => {
    const hf = writeTiny(path.join(dir, 'hf-dir'), 'hf');
    fs.rmSync(path.join(hf, 'config.json'));
    fs.mkdirSync(path.join(hf, 'config.json'));
    await expect(loadModel(hf)).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(loadModel(hf)).rejects.toThrow(/is a directory/);
  });

  test('a GGUF claiming 2^24 layers fails fast with TensorError', async () => {
    const f = writeTinyGgufEdited(path.join(dir, 'layers.gguf'), (meta) => {
      for (const m of meta) if (m[0] === 'llama.block_count') m[2] = 2 ** 24;
    });
    const t0 = Date.now();
    await expect(loadModel(f)).rejects.toBeInstanceOf(TensorError);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  test('an HF config.json claiming 2^24 layers fails fast with TensorError', async () => {
    const hf = writeTiny(path.join(dir, 'hf-layers'), 'hf');
    const cfgPath = path.join(hf, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
    cfg.num_hidden_layers = 2 ** 24;
    fs.writeFileSync(cfgPath, JSON.stringify(cfg));
    const t0 = Date.now();
    await expect(loadModel(hf)).rejects.toBeInstanceOf(TensorError);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  test('a tokenizer.json over the documented size limit is FormatError before it is read', async () => {
    const hf = writeTiny(path.join(dir, 'hf-big'), 'hf');
    const tok = path.join(hf, 'tokenizer.json');
    fs.truncateSync(tok, 200 * 1024 * 1024);  // sparse: no disk is used
    await expect(loadModel(hf)).rejects.toBeInstanceOf(FormatError);
    await expect(loadModel(hf)).rejects.toThrow(/MiB limit/);
  });
});

describe('non-finite weights', () => {
  const poisoned = (value: number) =>
    writeTinyGgufEdited(path.join(dir, `poison-${value}.gguf`), (_meta, tensors) => {
      const t = tensors.find((x) => x.name === 'blk.0.attn_q.weight')!;
      const data = new Float32Array(t.shape[0] * t.shape[1]).fill(0.01);
      data[17] = value;
      t.data = data;
    });

  test.each([NaN, Infinity])('%s: checkTensors names the tensor; generation ends with NumericError', async (v) => {
    const f = poisoned(v);
    await expect(loadModel(f, { checkTensors: true })).rejects.toBeInstanceOf(NumericError);
    await expect(loadModel(f, { checkTensors: true })).rejects.toThrow(/blk\.0\.attn_q\.weight/);
    const m = await loadModel(f, { threads: 1 });
    try {
      const s = m.createSession({ contextSize: 64 });
      await expect(s.complete('the', { maxTokens: 8, temperature: 0 })).rejects.toBeInstanceOf(NumericError);
      await expect(s.complete('the', { maxTokens: 8, temperature: 0.8, topK: 0, topP: 1, minP: 0 })).rejects.toBeInstanceOf(
        NumericError,
      );
      s.dispose();
    } finally {
      await m.dispose();
    }
  });

  test('checkTensors passes a sound model and is a boolean option', async () => {
    const m = await loadModel(writeTiny(path.join(dir, 'sound'), 'gguf'), { checkTensors: true });
    await m.dispose();
    await expect(loadModel('x.gguf', { checkTensors: 'yes' as unknown as boolean })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});

describe('argument values', () => {
  test.each([2 ** 32 + 1, NaN, -1, 1.5, 4, Infinity])('evaluate rows = %p is InvalidArgumentError', async (rows) => {
    const s = model.createSession({ contextSize: 64 });
    await expect(s.evaluate([1, 2, 3], rows)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(s.tokens).toHaveLength(0);
    s.dispose();
  });

  test('the native evaluate refuses the same values (the TS layer is not the only guard)', async () => {
    const s = model.createSession({ contextSize: 64 });
    const native = (s as unknown as { native: { evaluate(t: number[], r: number): Promise<unknown> } }).native;
    for (const rows of [2 ** 32 + 1, NaN, -1, 4])
      expect(() => native.evaluate([1, 2, 3], rows)).toThrow(expect.objectContaining({ code: 'E_INVALID_ARG' }));
    s.dispose();
  });

  test('a model whose own context is 1: createSession() explains that it is the model', async () => {
    const f = writeTinyGgufEdited(path.join(dir, 'ctx1.gguf'), (meta) => {
      for (const m of meta) if (m[0] === 'llama.context_length') m[2] = 1;
    });
    const m = await loadModel(f, { threads: 1 });
    try {
      expect(() => m.createSession()).toThrow(InvalidArgumentError);
      expect(() => m.createSession()).toThrow(/model's own context length is 1/);
      m.createSession({ contextSize: 16 }).dispose();  // an explicit size works
    } finally {
      await m.dispose();
    }
  });

  test('chimera generate with an out-of-range --context exits 2 before loading', () => {
    const cli = path.join(repoRoot, 'dist', 'cli.js');
    for (const context of ['1000000000', '1']) {
      const r = spawnSync(process.execPath, [cli, 'generate', '--model', 'absent.gguf', '--context', context], {
        encoding: 'utf8',
        timeout: 60000,
      });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/contextSize/);
    }
  });
});
