#!/usr/bin/env node
// The `chimera` command line: generate text, chat, print model and draft information, train drafts and
// small base models, and the demo.
import * as fs from 'node:fs';
import { parseArgs, ParseArgsConfig } from 'node:util';
import { runChatLoop } from './chatCli';
import { ChimeraError, InvalidArgumentError } from './errors';
import { validateGenerateOptions, validateLoadOptions, validateSessionOptions } from './options';
import { readDraftMetadata } from './draft';
import { runDemo, formatDemo } from './demo';
import { loadModel, ModelInfo } from './model';
import { runServe } from './server/run';
import { checkQueueName } from './queue/protocol';
import { runWorkerCommand } from './queue/workerCli';
import {
  trainBase, TrainBaseOptions, trainDraft, TrainDraftOptions, validateTrainBaseOptions, validateTrainDraftOptions,
} from './train';

// ---- option tables: parsing and the usage text both come from these ----

interface Flag {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  default?: string | boolean;
  /** The value's name in the usage text (string flags). */
  meta?: string;
  required?: boolean;
}
type Flags = Record<string, Flag>;

const threadsFlag: Flag = { type: 'string', meta: 'N' };
const common: Flags = { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } };

const generateFlags: Flags = {
  model: { type: 'string', meta: 'FILE', required: true },
  tokenizer: { type: 'string', meta: 'FILE' },
  prompt: { type: 'string', default: '', meta: 'TEXT' },
  n: { type: 'string', short: 'n', default: '128', meta: 'N' },
  temperature: { type: 'string', meta: 'T' },
  'top-k': { type: 'string', meta: 'K' },
  'top-p': { type: 'string', meta: 'P' },
  'min-p': { type: 'string', meta: 'P' },
  'repeat-penalty': { type: 'string', meta: 'R' },
  seed: { type: 'string', meta: 'S' },
  threads: threadsFlag,
  context: { type: 'string', meta: 'N' },
  stop: { type: 'string', multiple: true, meta: 'TEXT' },
  draft: { type: 'string', meta: 'FILE' },
  tree: { type: 'string', meta: 'auto|chimera-25|chain-N|JSON' },
  lookup: { type: 'boolean' },
  'lookup-cache': { type: 'string', meta: 'FILE' },
  ...common,
};

const chatFlags: Flags = {
  model: { type: 'string', meta: 'FILE', required: true },
  draft: { type: 'string', meta: 'FILE' },
  tree: { type: 'string', meta: 'auto|chimera-25|chain-N|JSON' },
  lookup: { type: 'boolean' },
  system: { type: 'string', meta: 'TEXT' },
  template: { type: 'string', meta: 'FILE' },
  n: { type: 'string', short: 'n', default: '512', meta: 'N' },
  temperature: { type: 'string', meta: 'T' },
  'top-p': { type: 'string', meta: 'P' },
  seed: { type: 'string', meta: 'S' },
  threads: threadsFlag,
  context: { type: 'string', meta: 'N' },
  help: common.help,
};

const infoFlags: Flags = {
  model: { type: 'string', meta: 'FILE' },
  tokenizer: { type: 'string', meta: 'FILE' },
  draft: { type: 'string', meta: 'FILE' },
  ...common,
};

const trainDraftFlags: Flags = {
  model: { type: 'string', meta: 'FILE', required: true },
  out: { type: 'string', meta: 'FILE', required: true },
  tokenizer: { type: 'string', meta: 'FILE' },
  heads: { type: 'string', meta: 'K' },
  width: { type: 'string', meta: 'D' },
  'head-vocab': { type: 'string', meta: 'N' },
  data: { type: 'string', meta: 'self:N|file:PATH' },
  steps: { type: 'string', meta: 'N' },
  'seq-len': { type: 'string', meta: 'L' },
  lr: { type: 'string', meta: 'LR' },
  batch: { type: 'string', meta: 'B' },
  seed: { type: 'string', meta: 'S' },
  threads: threadsFlag,
  'checkpoint-every': { type: 'string', meta: 'N' },
  resume: { type: 'string', meta: 'CKPT' },
  dtype: { type: 'string', meta: 'F32|F16|BF16' },
  'soft-targets': { type: 'string', meta: 'T' },
  ...common,
};

const trainBaseFlags: Flags = {
  corpus: { type: 'string', meta: 'FILE', required: true },
  out: { type: 'string', meta: 'FILE.gguf', required: true },
  vocab: { type: 'string', meta: 'N' },
  dim: { type: 'string', meta: 'D' },
  layers: { type: 'string', meta: 'L' },
  heads: { type: 'string', meta: 'H' },
  'kv-heads': { type: 'string', meta: 'G' },
  hidden: { type: 'string', meta: 'F' },
  'seq-len': { type: 'string', meta: 'S' },
  context: { type: 'string', meta: 'N' },
  steps: { type: 'string', meta: 'N' },
  batch: { type: 'string', meta: 'B' },
  lr: { type: 'string', meta: 'LR' },
  dtype: { type: 'string', meta: 'F32|F16|BF16' },
  seed: { type: 'string', meta: 'S' },
  threads: threadsFlag,
  name: { type: 'string', meta: 'NAME' },
  ...common,
};

const demoFlags: Flags = {
  tree: { type: 'string', meta: 'NAME|JSON' },
  n: { type: 'string', short: 'n', default: '64', meta: 'N' },
  cache: { type: 'string', meta: 'DIR' },
  small: { type: 'boolean', default: false },
  threads: threadsFlag,
  ...common,
};

const serveFlags: Flags = {
  model: { type: 'string', meta: 'FILE', required: true },
  draft: { type: 'string', meta: 'FILE' },
  tree: { type: 'string', meta: 'auto|chimera-25|chain-N|JSON' },
  host: { type: 'string', default: '127.0.0.1', meta: 'ADDR' },
  port: { type: 'string', default: '8080', meta: 'N' },
  parallel: { type: 'string', default: '1', meta: 'N' },
  queue: { type: 'string', default: '64', meta: 'N' },
  'api-key': { type: 'string', meta: 'KEY' },
  template: { type: 'string', meta: 'FILE' },
  threads: threadsFlag,
  context: { type: 'string', meta: 'N' },
  help: common.help,
};

const workerFlags: Flags = {
  redis: { type: 'string', meta: 'redis://HOST:PORT', required: true },
  model: { type: 'string', meta: 'FILE', required: true },
  tokenizer: { type: 'string', meta: 'FILE' },
  draft: { type: 'string', meta: 'FILE' },
  tree: { type: 'string', meta: 'auto|chimera-25|chain-N|JSON' },
  lookup: { type: 'boolean' },
  queue: { type: 'string', meta: 'NAME' },
  concurrency: { type: 'string', meta: 'N' },
  threads: threadsFlag,
  context: { type: 'string', meta: 'N' },
  id: { type: 'string', meta: 'NAME' },
  'lock-ms': { type: 'string', meta: 'MS' },
  'stalled-ms': { type: 'string', meta: 'MS' },
  help: common.help,
};

const COMMANDS: [string, Flags, string?][] = [
  ['generate', generateFlags],
  ['chat', chatFlags, 'interactive: /reset starts over, /exit quits, Ctrl-C stops a reply'],
  ['serve', serveFlags, 'OpenAI-compatible HTTP API; --api-key or CHIMERA_API_KEY; SIGTERM drains'],
  ['info', infoFlags, 'at least one of --model and --draft'],
  ['train-draft', trainDraftFlags],
  ['train-base', trainBaseFlags],
  ['worker', workerFlags, 'serves generation jobs from a BullMQ queue; SIGINT/SIGTERM finish the jobs held, then exit'],
  ['demo', demoFlags, 'stories260K text, then plain vs Chimera on it widened to the 1.1B shape (built once into --cache)'],
];

function usageOf(name: string, flags: Flags, note?: string): string {
  const words = Object.entries(flags)
    .filter(([f]) => f !== 'help')
    .map(([f, d]) => {
      const flag = (f.length === 1 ? '-' : '--') + f + (d.type === 'string' ? ` ${d.meta ?? 'VALUE'}` : '');
      return (d.required ? flag : `[${flag}]`) + (d.multiple ? '...' : '');
    });
  const head = `  chimera ${name} `;
  const lines: string[] = [];
  let line = head;
  for (const w of words) {
    if (line.length + w.length > 110 && line.trim() !== `chimera ${name}`) {
      lines.push(line.trimEnd());
      line = ' '.repeat(head.length);
    }
    line += w + ' ';
  }
  lines.push(line.trimEnd() + (note ? `   (${note})` : ''));
  return lines.join('\n');
}

/** The usage text, generated from the option tables above. */
export const USAGE = `usage:\n${COMMANDS.map(([n, f, note]) => usageOf(n, f, note)).join('\n')}`;

class UsageError extends Error {}

function num(flag: string, v: unknown, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)))
    throw new UsageError(`--${flag} expects ${integer ? 'an integer' : 'a number'}, got '${String(v)}'`);
  return n;
}

/** Runs the library's own option checks on flag values, so a bad value is a usage error (exit 2). */
function checkFlags(check: () => unknown): void {
  try {
    check();
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new UsageError(err.message);
    throw err;
  }
}

function parse(argv: string[], flags: Flags) {
  const options: ParseArgsConfig['options'] = {};
  for (const [f, d] of Object.entries(flags)) {
    options[f] = { type: d.type, ...(d.short ? { short: d.short } : {}), ...(d.multiple ? { multiple: true } : {}),
      ...(d.default !== undefined ? { default: d.default } : {}) } as never;
  }
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true }).values;
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
}

function parseTree(v: unknown): string | number[][] | undefined {
  if (typeof v !== 'string') return undefined;
  if (!v.trim().startsWith('[')) return v;
  try {
    return JSON.parse(v) as number[][];
  } catch {
    throw new UsageError(`--tree expects a tree name or a JSON list of paths, got '${v}'`);
  }
}

async function generate(argv: string[]): Promise<void> {
  const v = parse(argv, generateFlags) as Record<string, unknown>;
  if (v.help) return void console.log(USAGE);
  if (typeof v.model !== 'string') throw new UsageError('--model is required');
  if (v.tree !== undefined && v.draft === undefined) throw new UsageError('--tree needs --draft');
  // All flags are checked before the model loads.
  const contextSize = num('context', v.context, true);
  const tree = parseTree(v.tree);
  const opts = {
    maxTokens: num('n', v.n, true),
    temperature: num('temperature', v.temperature, false),
    topK: num('top-k', v['top-k'], true),
    topP: num('top-p', v['top-p'], false),
    minP: num('min-p', v['min-p'], false),
    repeatPenalty: num('repeat-penalty', v['repeat-penalty'], false),
    seed: num('seed', v.seed, true),
    stop: v.stop as string[] | undefined,
  };
  const threads = num('threads', v.threads, true);
  const loadOptions = { tokenizer: v.tokenizer as string | undefined, threads };
  checkFlags(() => {
    validateLoadOptions(loadOptions);
    validateSessionOptions({ contextSize });
    validateGenerateOptions(opts);
  });
  const model = await loadModel(v.model, loadOptions);
  try {
    const draft = typeof v.draft === 'string' ? await model.loadDraft(v.draft) : undefined;
    const cacheFile = v['lookup-cache'];
    const lookup = typeof cacheFile === 'string' ? { corpus: await model.loadLookupCache(cacheFile) } : v.lookup === true;
    const session = model.createSession({
      contextSize,
      draft,
      tree: draft ? tree : undefined,
      lookup,
    });
    const prompt = v.prompt as string;
    if (v.json) {
      const r = await session.complete(prompt, opts);
      const { text, promptTokens, tokens, stats, stopReason } = r;
      process.stdout.write(JSON.stringify({ text, promptTokens, tokens, stopReason, stats }) + '\n');
    } else {
      process.stdout.write(prompt);
      const it = session.generate(prompt, opts);
      let step = await it.next();
      while (!step.done) {
        process.stdout.write(step.value.text);
        step = await it.next();
      }
      const s = step.value.stats;
      process.stdout.write('\n');
      process.stderr.write(
        `[${s.generatedTokens} tokens, ${s.tokensPerSecond.toFixed(1)} tok/s; prompt ${s.promptTokensEvaluated} tokens, ` +
          `${s.promptTokensPerSecond.toFixed(1)} tok/s]\n`,
      );
    }
    session.dispose();
  } finally {
    await model.dispose();
  }
}

async function chat(argv: string[]): Promise<void> {
  const v = parse(argv, chatFlags) as Record<string, unknown>;
  if (v.help) return void console.log(USAGE);
  if (typeof v.model !== 'string') throw new UsageError('--model is required');
  if (v.tree !== undefined && v.draft === undefined) throw new UsageError('--tree needs --draft');
  const contextSize = num('context', v.context, true);
  const tree = parseTree(v.tree);
  const generate = {
    maxTokens: num('n', v.n, true),
    temperature: num('temperature', v.temperature, false),
    topP: num('top-p', v['top-p'], false),
    seed: num('seed', v.seed, true),
  };
  const threads = num('threads', v.threads, true);
  checkFlags(() => {
    validateLoadOptions({ threads });
    validateSessionOptions({ contextSize });
    validateGenerateOptions(generate);
  });
  let template: string | undefined;
  if (typeof v.template === 'string') {
    try {
      template = fs.readFileSync(v.template, 'utf8');
    } catch (err) {
      throw new UsageError(`--template: cannot read ${v.template} (${(err as Error).message})`);
    }
  }
  const model = await loadModel(v.model, { threads });
  try {
    const draft = typeof v.draft === 'string' ? await model.loadDraft(v.draft) : undefined;
    const session = model.createSession({ contextSize, draft, tree: draft ? tree : undefined, lookup: v.lookup === true });
    await runChatLoop(session, {
      system: v.system as string | undefined,
      generate: { ...generate, template },
      input: process.stdin,
      output: process.stdout,
      status: process.stderr,
    });
    session.dispose();
  } finally {
    await model.dispose();
  }
}

async function serve(argv: string[]): Promise<void> {
  const v = parse(argv, serveFlags) as Record<string, unknown>;
  if (v.help) return void console.log(USAGE);
  if (typeof v.model !== 'string') throw new UsageError('--model is required');
  if (v.tree !== undefined && v.draft === undefined) throw new UsageError('--tree needs --draft');
  const port = num('port', v.port, true) as number;
  const parallel = num('parallel', v.parallel, true) as number;
  const queueLimit = num('queue', v.queue, true) as number;
  const threads = num('threads', v.threads, true);
  const contextSize = num('context', v.context, true);
  if (port < 0 || port > 65535) throw new UsageError(`--port must be in 0..65535, got ${port}`);
  if (parallel < 1 || parallel > 4096) throw new UsageError(`--parallel must be in 1..4096, got ${parallel}`);
  if (queueLimit < 0 || queueLimit > 4096) throw new UsageError(`--queue must be in 0..4096, got ${queueLimit}`);
  const apiKey = (v['api-key'] as string | undefined) ?? (process.env.CHIMERA_API_KEY || undefined);
  if (apiKey === '') throw new UsageError('--api-key must not be empty');
  if (typeof v.template === 'string' && !fs.existsSync(v.template)) throw new UsageError(`--template: ${v.template} does not exist`);
  checkFlags(() => {
    validateLoadOptions({ threads });
    validateSessionOptions({ contextSize });
  });
  await runServe({
    model: v.model, draft: v.draft as string | undefined, tree: parseTree(v.tree), host: v.host as string, port,
    parallel, queueLimit, apiKey, threads, contextSize, templateFile: v.template as string | undefined,
  });
}

async function info(argv: string[]): Promise<void> {
  const v = parse(argv, infoFlags) as Record<string, unknown>;
  if (v.help) return void console.log(USAGE);
  if (typeof v.model !== 'string' && typeof v.draft !== 'string') throw new UsageError('--model or --draft is required');
  const out: Record<string, unknown> = {};
  const lines: string[] = [];
  if (typeof v.model === 'string') {
    const model = await loadModel(v.model, { tokenizer: v.tokenizer as string | undefined, threads: 1 });
    out.model = model.info;
    lines.push(...modelLines(model.info));
    await model.dispose();
  }
  if (typeof v.draft === 'string') {
    const meta = readDraftMetadata(v.draft);
    out.draft = meta;
    lines.push(`draft         ${v.draft}`);
    for (const [k, val] of Object.entries(meta)) lines.push(`  ${k.padEnd(20)} ${val}`);
  }
  process.stdout.write(v.json ? JSON.stringify(out, null, 2) + '\n' : lines.join('\n') + '\n');
}

function modelLines(i: ModelInfo): string[] {
  const mb = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
  return [
    `model         ${i.path} (${i.format})`,
    `architecture  ${i.architecture}${i.name ? ` "${i.name}"` : ''}`,
    `shape         dim ${i.embeddingLength}, layers ${i.layers}, heads ${i.heads}/${i.kvHeads} (head ${i.headSize}), ffn ${i.feedForwardLength}`,
    `vocab         ${i.vocabSize}, context ${i.contextLength}`,
    `dtype         ${i.dtype}, output ${i.tiedOutput ? 'tied to embedding' : 'separate'}`,
    `rope          theta ${i.ropeTheta}, ${i.ropeLayout}; rms eps ${i.rmsEps}`,
    `memory        weights ${mb(i.weightBytes)} (mapped ${mb(i.mappedBytes)}, converted ${mb(i.ownedBytes)}, repacked for the CPU ${mb(i.repackedBytes)})`,
    `tokenizer     ${i.tokenizer.model} BPE${i.tokenizer.pre ? ` (${i.tokenizer.pre})` : ''}, ${i.tokenizer.vocabSize} tokens, ` +
      `bos ${i.tokenizer.bos}, eos ${i.tokenizer.eos}, eot ${i.tokenizer.eot}${i.tokenizer.chatTemplate ? ', chat template' : ''}`,
    `compute       ${i.backend}, ${i.kernels} kernels, ${i.threads} threads`,
  ];
}

function bar(fraction: number, width = 24): string {
  const n = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return '[' + '#'.repeat(n) + '.'.repeat(width - n) + ']';
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${Math.round(s % 60).toString().padStart(2, '0')}s` : `${Math.round(s)}s`;
}

async function trainDraftCommand(argv: string[]): Promise<void> {
  const v = parse(argv, trainDraftFlags) as Record<string, unknown>;
  if (v.help) return void console.log(USAGE);
  if (typeof v.model !== 'string') throw new UsageError('--model is required');
  if (typeof v.out !== 'string') throw new UsageError('--out is required');
  const out = v.out;
  const opts: TrainDraftOptions = {
    heads: num('heads', v.heads, true),
    width: num('width', v.width, true),
    headVocab: num('head-vocab', v['head-vocab'], true),
    data: v.data as string | undefined,
    steps: num('steps', v.steps, true),
    seqLen: num('seq-len', v['seq-len'], true),
    lr: num('lr', v.lr, false),
    batch: num('batch', v.batch, true),
    seed: num('seed', v.seed, true),
    checkpoint: `${out}.ckpt`,
    checkpointEvery: num('checkpoint-every', v['checkpoint-every'], true),
    resume: v.resume as string | undefined,
    softTargets: num('soft-targets', v['soft-targets'], false),
  };
  const threads = num('threads', v.threads, true);
  const loadOptions = { tokenizer: v.tokenizer as string | undefined, threads };
  const dtype = (v.dtype as 'F32' | 'F16' | 'BF16' | undefined) ?? 'F32';
  checkFlags(() => {
    validateLoadOptions(loadOptions);
    validateTrainDraftOptions(opts);
    if (!['F32', 'F16', 'BF16'].includes(dtype)) throw new InvalidArgumentError(`--dtype must be F32, F16 or BF16, got '${dtype}'`);
  });
  const model = await loadModel(v.model, loadOptions);
  const tty = process.stderr.isTTY;
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  try {
    const draft = await trainDraft(model, opts, {
      signal: ac.signal,
      onProgress: (p) => {
        let line: string;
        if (p.phase === 'data') {
          line = `generating data: ${p.step} sequences (${formatSeconds(p.elapsedSeconds)})`;
        } else {
          const agree = p.agreementByHead.map((a) => (a * 100).toFixed(0) + '%').join(' ');
          line = `${bar(p.step / p.steps)} step ${p.step}/${p.steps} loss ${p.loss.toFixed(3)} agree ${agree} ` +
            `${Math.round(p.predictionsPerSecond)} pred/s ETA ${formatSeconds(p.etaSeconds)}`;
        }
        if (v.json) process.stdout.write(JSON.stringify(p) + '\n');
        else process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
      },
    });
    if (tty && !v.json) process.stderr.write('\n');
    await draft.save(out, { dtype });
    process.stderr.write(`saved ${out} (checkpoint ${out}.ckpt)\n`);
  } finally {
    await model.dispose();
  }
}

async function trainBaseCommand(argv: string[]): Promise<void> {
  const v = parse(argv, trainBaseFlags) as Record<string, unknown>;
  if (v.help) return void console.log(USAGE);
  if (typeof v.corpus !== 'string') throw new UsageError('--corpus is required');
  if (typeof v.out !== 'string') throw new UsageError('--out is required');
  const opts: TrainBaseOptions = {
    corpus: v.corpus,
    out: v.out,
    vocab: num('vocab', v.vocab, true),
    dim: num('dim', v.dim, true),
    layers: num('layers', v.layers, true),
    heads: num('heads', v.heads, true),
    kvHeads: num('kv-heads', v['kv-heads'], true),
    hidden: num('hidden', v.hidden, true),
    seqLen: num('seq-len', v['seq-len'], true),
    context: num('context', v.context, true),
    steps: num('steps', v.steps, true),
    batch: num('batch', v.batch, true),
    lr: num('lr', v.lr, false),
    seed: num('seed', v.seed, true),
    dtype: v.dtype as TrainBaseOptions['dtype'],
    name: v.name as string | undefined,
  };
  const threads = num('threads', v.threads, true);
  checkFlags(() => validateTrainBaseOptions(opts, threads));
  const tty = process.stderr.isTTY;
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  const loss = await trainBase(opts, {
    signal: ac.signal,
    threads,
    onProgress: (p) => {
      const line = p.phase === 'tokenizer' ? 'training the tokenizer...'
        : `${bar(p.step / p.steps)} step ${p.step}/${p.steps} loss ${p.loss.toFixed(3)}` +
          `${p.validationLoss === null ? '' : ` val ${p.validationLoss.toFixed(3)}`} acc ${(p.accuracy * 100).toFixed(1)}% ` +
          `${Math.round(p.tokensPerSecond)} tok/s ETA ${formatSeconds(p.etaSeconds)}`;
      if (v.json) process.stdout.write(JSON.stringify(p) + '\n');
      else process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
    },
  });
  if (tty && !v.json) process.stderr.write('\n');
  process.stderr.write(`wrote ${opts.out} (held-out loss ${loss.toFixed(3)} nats/token)\n`);
}

async function worker(argv: string[]): Promise<void> {
  const v = parse(argv, workerFlags) as Record<string, string | boolean | undefined>;
  if (v.help) return void console.log(USAGE);
  if (typeof v.redis !== 'string' || typeof v.model !== 'string') throw new UsageError('--redis and --model are required');
  if (!/^rediss?:\/\//.test(v.redis)) throw new UsageError(`--redis expects redis://HOST:PORT, got '${v.redis}'`);
  if (v.tree !== undefined && v.draft === undefined) throw new UsageError('--tree needs --draft');
  const c = {
    redis: v.redis, model: v.model, tokenizer: v.tokenizer as string | undefined, draft: v.draft as string | undefined,
    tree: parseTree(v.tree), lookup: v.lookup === true, queue: v.queue as string | undefined,
    concurrency: num('concurrency', v.concurrency, true), threads: num('threads', v.threads, true),
    contextSize: num('context', v.context, true), id: v.id as string | undefined,
    lockMs: num('lock-ms', v['lock-ms'], true), stalledMs: num('stalled-ms', v['stalled-ms'], true),
  };
  checkFlags(() => {
    validateLoadOptions({ tokenizer: c.tokenizer, threads: c.threads });
    validateSessionOptions({ contextSize: c.contextSize });
    if (c.concurrency !== undefined && c.concurrency < 1) throw new InvalidArgumentError('--concurrency must be at least 1');
    checkQueueName(c.queue);
    if (c.lockMs !== undefined && c.lockMs < 100) throw new InvalidArgumentError('--lock-ms must be at least 100');
  });
  await runWorkerCommand(c);
}

async function demo(argv: string[]): Promise<void> {
  const v = parse(argv, demoFlags) as Record<string, unknown>;
  if (v.help) return void console.log(USAGE);
  const tree = parseTree(v.tree) ?? 'auto';
  const tokens = num('n', v.n, true) as number;
  const tty = process.stderr.isTTY;
  let shown = -1;
  const r = await runDemo({
    tree, tokens, threads: num('threads', v.threads, true), cache: v.cache as string | undefined, small: v.small === true,
    log: (line) => process.stderr.write(`${line}\n`),
    progress: (f, what) => {
      const pct = Math.floor(100 * f);
      if (pct === shown) return;
      shown = pct;
      const bar = '#'.repeat(Math.round(pct / 4)).padEnd(25, '.');
      if (tty) process.stderr.write(`\r[${bar}] ${pct}% ${what}${pct === 100 ? '\n' : ''}`);
      else if (pct % 10 === 0) process.stderr.write(`[${bar}] ${pct}% ${what}\n`);
    },
  });
  if (v.json) process.stdout.write(JSON.stringify({ tree, tokens, ...r }) + '\n');
  else process.stdout.write(formatDemo(r, tree));
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'generate') await generate(rest);
    else if (command === 'chat') await chat(rest);
    else if (command === 'serve') await serve(rest);
    else if (command === 'info') await info(rest);
    else if (command === 'train-draft') await trainDraftCommand(rest);
    else if (command === 'train-base') await trainBaseCommand(rest);
    else if (command === 'worker') await worker(rest);
    else if (command === 'demo') await demo(rest);
    else if (command === undefined || command === '--help' || command === '-h') console.log(USAGE);
    else throw new UsageError(`unknown command '${command}'`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      const known = COMMANDS.find(([n]) => n === command);
      const usage = known ? `usage:\n${usageOf(...known)}` : 'commands: ' + COMMANDS.map(([n]) => n).join(', ');
      process.stderr.write(`chimera: ${err.message}\n${usage}\n(see chimera --help)\n`);
      return 2;
    }
    if (err instanceof ChimeraError) {
      process.stderr.write(`chimera: ${err.code}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`chimera: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
