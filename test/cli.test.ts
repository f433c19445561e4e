// The `chimera` CLI: generate --json prints the documented object; info prints the model; bad
// arguments print one line and exit non-zero.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { defaultDraftPath, defaultModelPath, loadModel } from '../lib';
import { describeStories, golden, repoRoot, storiesBin, storiesGguf, storiesTokenizer, tempDir } from './helpers';

const cli = path.join(repoRoot, 'dist', 'cli.js');
function run(args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describeStories('chimera CLI on stories260K', () => {
  test('generate --json prints {text, promptTokens, tokens, stats} matching golden', () => {
    const c = golden().cases[0];
    const r = run(['generate', '--model', storiesGguf, '--prompt', c.prompt, '-n', '16', '--temperature', '0',
      '--threads', '1', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.promptTokens).toEqual(c.prompt_ids);
    expect(out.tokens).toEqual(c.output_ids.slice(0, 16));
    expect(typeof out.text).toBe('string');
    for (const k of ['promptTokensPerSecond', 'tokensPerSecond', 'msTotal']) expect(typeof out.stats[k]).toBe('number');
  });

  test('generate with --tokenizer reads the llama2.c checkpoint', () => {
    const r = run(['generate', '--model', storiesBin, '--tokenizer', storiesTokenizer, '--prompt', 'The cat', '-n', '8',
      '--temperature', '0', '--threads', '1']);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('The cat')).toBe(true);
  });

  test('generate --draft --tree speculates and still prints the golden greedy tokens', async () => {
    const draftFile = path.join(tempDir(), 'stories.chimera.safetensors');
    const model = await loadModel(storiesGguf, { threads: 1 });
    await (await model.createDraft({ heads: 5, seed: 3 })).save(draftFile);
    await model.dispose();
    const c = golden().cases[1];
    const r = run(['generate', '--model', storiesGguf, '--draft', draftFile, '--tree', '[[0],[1],[0,0]]', '--prompt',
      c.prompt, '-n', '32', '--temperature', '0', '--threads', '1', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.tokens).toEqual(c.output_ids.slice(0, 32));
    expect(out.stats.speculative).toBe(true);
    expect(out.stats.steps).toBeGreaterThan(0);
    expect(out.stats.acceptedByDepth).toHaveLength(2);
    const info = run(['info', '--draft', draftFile]);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/format\s+chimera-draft/);
    expect(info.stdout).toMatch(/heads\s+5/);
  });

  test('generate --lookup speculates without a draft and still prints the golden greedy tokens', async () => {
    const c = golden().cases[1];
    const r = run(['generate', '--model', storiesGguf, '--lookup', '--prompt', c.prompt, '-n', '64', '--temperature', '0',
      '--threads', '1', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.tokens).toEqual(c.output_ids.slice(0, 64));
    expect(out.stats.speculative).toBe(true);
    expect(Object.keys(out.stats.stepsByTree)).toEqual(['plain', 'lookup']);
    // A saved cache: its source is counted (zero or more accepted tokens).
    const model = await loadModel(storiesGguf, { threads: 1 });
    const cacheFile = path.join(tempDir(), 'c.ngram');
    await (await model.buildLookupCache([c.text])).save(cacheFile);
    await model.dispose();
    const r2 = run(['generate', '--model', storiesGguf, '--lookup-cache', cacheFile, '--prompt', c.prompt, '-n', '32',
      '--temperature', '0', '--threads', '1', '--json']);
    expect(r2.code).toBe(0);
    const out2 = JSON.parse(r2.stdout);
    expect(out2.tokens).toEqual(c.output_ids.slice(0, 32));
    expect(typeof out2.stats.acceptedBySource.corpus).toBe('number');
  });

  test('info prints shapes and the tokenizer', () => {
    const r = run(['info', '--model', storiesGguf]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/dim 64, layers 5, heads 8\/4/);
    expect(r.stdout).toMatch(/tokenizer\s+llama BPE, 512 tokens/);
  });
});

test.each([
  [['generate']],
  [['generate', '--model']],
  [['generate', '--model', 'x.gguf', '-n', 'abc']],
  [['generate', '--model', 'x.gguf', '--bogus']],
  [['frobnicate']],
  [['generate', '--model', 'x.gguf', '--tree', 'chain-2']],
  [['info']],
  // Checked before any work: the model path does not exist, so loading first would exit 1.
  [['train-draft', '--model', 'absent.gguf', '--out', 'x.safetensors', '--dtype', 'F8']],
  [['train-draft', '--model', 'absent.gguf', '--out', 'x.safetensors', '--seq-len', '2']],
  [['train-base', '--corpus', 'absent.txt', '--out', 'x.gguf', '--dtype', 'Q4']],
  [['generate', '--model', 'absent.gguf', '--top-p', '7']],
])('bad arguments %j print one line and exit non-zero', (args) => {
  const r = run(args as string[]);
  expect(r.code).toBe(2);
  expect(r.stderr.trim().split('\n')[0]).toMatch(/^chimera: /);
  expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
});

test('--help lists every flag of every command (the usage text is generated from the option tables)', () => {
  const r = run(['--help']);
  expect(r.code).toBe(0);
  for (const flag of ['--soft-targets', '--tokenizer', '--name', '--context', '--resume', '--kv-heads', '--stop TEXT]...'])
    expect(r.stdout).toContain(flag);
  for (const cmd of ['generate', 'info', 'train-draft', 'train-base', 'demo']) expect(r.stdout).toContain(`chimera ${cmd} `);
});

test('a missing model file is a one-line E_NOT_FOUND error', () => {
  const r = run(['generate', '--model', path.join(repoRoot, 'no-such-model.gguf'), '--prompt', 'x']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^chimera: E_NOT_FOUND: /);
});

const hasDefault = fs.existsSync(defaultModelPath) && fs.existsSync(defaultDraftPath);
(hasDefault ? describe : describe.skip)(`the embedded default model${hasDefault ? '' : ' (skipped: models/ lacks it)'}`, () => {
  test('loadModel() without a path loads it, and chimera demo --small shows identical plain and Chimera output', async () => {
    const m = await loadModel();
    expect(m.info.name).toBe('chimera-brown-1m');
    const s = m.createSession({ contextSize: 128 });
    expect((await s.complete('The jury', { temperature: 0, maxTokens: 5 })).tokens).toHaveLength(5);
    await m.dispose();
    // --small: stories260K only (the wide model is 2.2 GB; tools/wide-stories is tested in wideStories.test.ts).
    const r = run(['demo', '--small', '-n', '24', '--tree', 'chain-3', '--threads', '1', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.wide).toBeUndefined();
    expect(out.stories).toHaveLength(2);
    for (const row of out.stories) {
      expect(row.identical).toBe(true);
      expect(row.tokensPerStep).toBeGreaterThan(1);
    }
  });
});
