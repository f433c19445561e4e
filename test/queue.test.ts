// Workers across machines: a real redis-server, `chimera worker` child processes sharing one BullMQ
// queue, and the queue client. Greedy results equal local session.complete, streamed chunks join to
// the result's text, jobs spread over the workers, a worker killed mid-job (SIGKILL) has its job
// finished by another with exactly one clean result, bad input fails fast with typed errors, and
// closing client and workers leaves nothing open.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { Queue } from 'bullmq';
import {
  AbortError, DisposedError, InvalidArgumentError, QueueChunk, QueueClient, QueueError, UnsupportedError, createQueueClient, loadModel,
} from '../lib';
import { AttemptReassembler } from '../lib/queue/reassemble';
import { repoRoot } from './helpers';

const cli = path.join(repoRoot, 'dist', 'cli.js');
const modelPath = path.join(repoRoot, 'models', 'stories260K.gguf');
const CONTEXT = 4096;
const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
const describeRedis: jest.Describe = hasRedis
  ? describe
  : (((name: string, fn: () => void) =>
      describe.skip(`${name} (skipped: redis-server is not installed)`, fn)) as unknown as jest.Describe);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A child process with its output collected, and a way to wait for a line. */
class Proc {
  out = '';
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d) => (this.out += d));
    child.stderr?.on('data', (d) => (this.out += d));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }
  async waitFor(re: RegExp, ms = 30000): Promise<void> {
    const end = Date.now() + ms;
    while (!re.test(this.out)) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`exited before ${re}:\n${this.out}`);
      if (Date.now() > end) throw new Error(`no ${re} within ${ms} ms:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

async function startRedis(port: number): Promise<Proc> {
  const p = new Proc(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] }));
  await p.waitFor(/Ready to accept connections/);
  return p;
}

async function startWorker(url: string, queue: string, id: string, concurrency: number): Promise<Proc> {
  const p = new Proc(spawn(process.execPath, [cli, 'worker', '--redis', url, '--model', modelPath, '--queue', queue, '--id', id,
    '--threads', '1', '--context', String(CONTEXT), '--concurrency', String(concurrency), '--lock-ms', '1500', '--stalled-ms', '500'],
  { stdio: ['ignore', 'pipe', 'pipe'] }));
  await p.waitFor(/ready on queue/);
  return p;
}

/** Runs a queued generation to the end: its chunks and its result. */
async function collect<R>(it: AsyncGenerator<QueueChunk, R, undefined>, onChunk?: (c: QueueChunk) => void) {
  const chunks: QueueChunk[] = [];
  let step = await it.next();
  while (!step.done) {
    chunks.push(step.value);
    onChunk?.(step.value);
    step = await it.next();
  }
  return { chunks, result: step.value };
}

const prompts = ['Once upon a time', 'The little dog', 'Lily wanted to', 'One day, a boy', 'The sun was', 'Tom and Sue'];

describeRedis('queue workers across processes (real redis-server, chimera worker)', () => {
  let redis: Proc;
  let url: string;
  let client: QueueClient;
  const workers: Proc[] = [];
  const queue = 'test-queue';

  /** Plain greedy decoding in this process, one fresh session per prompt: the clean reference. */
  async function reference(prompt: string, maxTokens: number) {
    const model = await loadModel(modelPath, { threads: 1 });
    try {
      const s = model.createSession({ contextSize: CONTEXT });
      return await s.complete(prompt, { maxTokens, temperature: 0 });
    } finally {
      await model.dispose();
    }
  }

  beforeAll(async () => {
    const port = await freePort();
    redis = await startRedis(port);
    url = `redis://127.0.0.1:${port}`;
    workers.push(...(await Promise.all([startWorker(url, queue, 'w1', 1), startWorker(url, queue, 'w2', 2)])));
    client = createQueueClient({ connection: url, queue, pollMs: 200 });
  });

  afterAll(async () => {
    await client?.close();
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
    const codes = await Promise.all(workers.map((w) => w.exited));
    redis?.child.kill('SIGTERM');
    await redis?.exited;
    // SIGTERM: each live worker finished and exited cleanly (the killed one has no code).
    for (const [i, code] of codes.entries()) if (workers[i].child.signalCode !== 'SIGKILL') expect(code).toBe(0);
  });

  test('greedy jobs on two workers equal local session.complete; chunks join to the text; both workers served', async () => {
    const runs = await Promise.all(prompts.map((p) => collect(client.generate(p, { maxTokens: 300, temperature: 0 }))));
    const served = new Set<string>();
    for (const [i, { chunks, result }] of runs.entries()) {
      const ref = await reference(prompts[i], 300);
      expect(result.text).toBe(ref.text);
      expect(result.tokens).toEqual(ref.tokens);
      expect(result.promptTokens).toEqual(ref.promptTokens);
      expect(result.stopReason).toBe(ref.stopReason);
      expect(chunks.map((c) => c.text).join('')).toBe(result.text);
      expect(chunks.flatMap((c) => c.tokens)).toEqual(result.tokens);
      expect(chunks.some((c) => c.restart)).toBe(false);
      expect(result.job.attempt).toBe(1);
      expect(['w1', 'w2']).toContain(result.job.worker);
      served.add(result.job.worker);
    }
    expect(served.size).toBe(2);
  });

  test('chat jobs render the template on the worker and equal local completeChat', async () => {
    const template = '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:';
    const messages = [{ role: 'user', content: 'Tell me about a cat.' }];
    const { chunks, result } = await collect(client.generate({ messages }, { template, maxTokens: 40, temperature: 0 }));
    const model = await loadModel(modelPath, { threads: 1 });
    const ref = await model.createSession({ contextSize: CONTEXT }).completeChat(messages, { template, maxTokens: 40, temperature: 0 });
    await model.dispose();
    expect(result.text).toBe(ref.text);
    expect(result.message).toEqual({ role: 'assistant', content: ref.text });
    expect(chunks.map((c) => c.text).join('')).toBe(result.text);
  });

  test('bad input: typed errors at once on the client, from the worker through the stream, and raw bad jobs fail', async () => {
    expect(() => client.generate('x', { temperature: -1 })).toThrow(InvalidArgumentError);
    expect(() => client.generate({ messages: [] })).toThrow(InvalidArgumentError);
    expect(() => client.generate('x', { append: true })).toThrow(/append/);
    // stories260K has no chat template: the worker refuses with the session's own error.
    await expect(client.complete({ messages: [{ role: 'user', content: 'hi' }] }, { maxTokens: 4 })).rejects.toThrow(UnsupportedError);
    // A prompt longer than the worker's context.
    await expect(client.complete(new Array(CONTEXT + 10).fill(1), { maxTokens: 4 })).rejects.toMatchObject({ code: 'E_PROMPT_TOO_LONG' });
    // A job put on the queue by something else, with data the worker cannot read: failed, not retried.
    const q = new Queue(queue, { connection: { host: '127.0.0.1', port: Number(url.split(':')[2]) } });
    const job = await q.add('generate', { v: 1, prompt: 42, options: {} }, { attempts: 3 });
    const end = Date.now() + 10000;
    while ((await job.getState()) !== 'failed' && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(await job.getState()).toBe('failed');
    const failed = await q.getJob(String(job.id));
    expect(failed?.failedReason).toMatch(/E_INVALID_ARG: prompt must be a string/);
    expect(failed?.attemptsStarted).toBe(1);
    await q.close();
    // The workers still serve.
    expect((await client.complete('Once', { maxTokens: 4, temperature: 0 })).tokens).toHaveLength(4);
  });

  test('close() while a job waits for a worker rejects it with DisposedError (no hang, no open handles)', async () => {
    // ioredis options instead of a URL.
    const lonely = createQueueClient({ connection: { host: '127.0.0.1', port: Number(url.split(':')[2]) }, queue: 'no-workers-here', pollMs: 100 });
    const pending = lonely.complete('Once', { maxTokens: 4 });
    await new Promise((r) => setTimeout(r, 300));
    await lonely.close();
    await expect(pending).rejects.toThrow(DisposedError);
    expect(() => lonely.generate('Once')).toThrow(DisposedError);
  });

  test('signal: a running job stops on its worker and resolves aborted; a waiting one is removed (AbortError); break cancels', async () => {
    const ac = new AbortController();
    const { chunks, result } = await collect(client.generate('Once upon a time', { maxTokens: 3000, temperature: 0, signal: ac.signal }),
      () => ac.abort());
    expect(result.aborted).toBe(true);
    expect(result.stopReason).toBe('abort');
    expect(result.tokens.length).toBeLessThan(3000);
    expect(chunks.map((c) => c.text).join('')).toBe(result.text);
    // Leaving the loop early cancels the job too: its worker stops it.
    let jobId: string | undefined;
    const marks = workers.map((w) => w.out.length);
    for await (const _ of client.generate('Once upon a time', { maxTokens: 3000, temperature: 0 })) break;
    const q0 = new Queue(queue, { connection: { host: '127.0.0.1', port: Number(url.split(':')[2]) } });
    const end = Date.now() + 10000;
    while (!jobId && Date.now() < end) {
      jobId = workers.map((w, k) => /job (\S+) done \(attempt 1, (\d+) tokens/.exec(w.out.slice(marks[k]))).find((m) => m)?.[1];
      await new Promise((r) => setTimeout(r, 50));
    }
    const stopped = await q0.getJob(String(jobId));
    expect(stopped?.returnvalue.aborted).toBe(true);
    expect(stopped?.returnvalue.tokens.length).toBeLessThan(3000);
    await q0.close();
    const lonely = createQueueClient({ connection: url, queue: 'no-workers-either', pollMs: 100 });
    const ac2 = new AbortController();
    const pending = lonely.complete('Once', { maxTokens: 4, signal: ac2.signal });
    setTimeout(() => ac2.abort(), 200);
    await expect(pending).rejects.toThrow(AbortError);
    const q = new Queue('no-workers-either', { connection: { host: '127.0.0.1', port: Number(url.split(':')[2]) } });
    expect(await q.getJobCounts('waiting', 'active')).toMatchObject({ waiting: 0, active: 0 });
    await q.close();
    await lonely.close();
  });

  test('a worker killed mid-job (SIGKILL): another finishes it, one result, text equal to the clean greedy run', async () => {
    const maxTokens = 3000;
    const ref = await reference('Once upon a time', maxTokens);
    expect(ref.tokens.length).toBe(maxTokens);
    const marks = workers.map((w) => w.out.length);
    let killed: string | undefined;
    const run = collect(client.generate('Once upon a time', { maxTokens, temperature: 0 }), () => {
      if (killed) return;
      // The first chunk has arrived: the worker that logged the job's start is mid-job. Kill it.
      const i = workers.findIndex((w, k) => /job \S+ started \(attempt 1\)/.test(w.out.slice(marks[k])));
      if (i < 0) return;
      killed = `w${i + 1}`;
      workers[i].child.kill('SIGKILL');
    });
    const { chunks, result } = await run;
    expect(killed).toBeDefined();
    expect(result.job.attempt).toBe(2);
    expect(result.job.worker).not.toBe(killed);
    expect(result.text).toBe(ref.text);
    expect(result.tokens).toEqual(ref.tokens);
    expect(chunks.some((c) => c.restart)).toBe(false);
    expect(chunks.map((c) => c.text).join('')).toBe(ref.text);
    expect(chunks.flatMap((c) => c.tokens)).toEqual(ref.tokens);
    // The killed worker never finished it; BullMQ completed it once, on the second start.
    const k = Number(killed?.slice(1)) - 1;
    expect(workers[k].out.slice(marks[k])).not.toMatch(/done/);
    const q = new Queue(queue, { connection: { host: '127.0.0.1', port: Number(url.split(':')[2]) } });
    const job = await q.getJob(result.job.id);
    expect(await job?.getState()).toBe('completed');
    expect(job?.attemptsStarted).toBe(2);
    expect(job?.returnvalue.job).toEqual(result.job);
    expect(job?.returnvalue.text).toBe(ref.text);
    await q.close();
  });
});

describe('AttemptReassembler: one clean chunk stream from several attempts', () => {
  const entry = (attempt: number) => ({ id: '0-0', type: 'chunk' as const, attempt, worker: 'w', data: null });
  function feed(m: AttemptReassembler, attempt: number, text: string, tokens: number[]) {
    return m.admit(entry(attempt)) ? m.chunk(text, tokens) : 'ignored';
  }

  test('a retry that repeats the streamed output passes on only what is new', () => {
    const m = new AttemptReassembler();
    expect(feed(m, 1, 'Once', [1])).toEqual({ text: 'Once', tokens: [1] });
    expect(feed(m, 1, ' upon', [2])).toEqual({ text: ' upon', tokens: [2] });
    expect(feed(m, 2, 'Once', [1])).toBeUndefined();
    expect(feed(m, 2, ' upon a', [2, 3])).toEqual({ text: ' a', tokens: [3] });
    expect(feed(m, 1, ' zombie', [9])).toBe('ignored');  // the superseded attempt, still writing
    expect(m.finish('Once upon a', [1, 2, 3])).toBeUndefined();
    expect(m.restarts).toBe(0);
  });

  test('a retry whose output differs, or ends shorter, restarts the stream with its whole text', () => {
    const m = new AttemptReassembler();
    feed(m, 1, 'Once upon', [1, 2]);
    expect(feed(m, 2, 'Once', [1])).toBeUndefined();
    expect(feed(m, 2, ' there', [5])).toEqual({ text: 'Once there', tokens: [1, 5], restart: true });
    expect(feed(m, 2, ' was', [6])).toEqual({ text: ' was', tokens: [6] });
    const short = new AttemptReassembler();
    feed(short, 1, 'Once upon', [1, 2]);
    feed(short, 2, 'Once', [1]);
    expect(short.finish('Once', [1])).toEqual({ text: 'Once', tokens: [1], restart: true });
  });
});

describe('chimera worker arguments', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [cli, 'worker', ...args], { encoding: 'utf8', timeout: 30000 });

  test.each([
    [['--model', modelPath]],
    [['--redis', 'localhost:6379', '--model', modelPath]],
    [['--redis', 'redis://127.0.0.1:1', '--model', modelPath, '--concurrency', '0']],
    [['--redis', 'redis://127.0.0.1:1', '--model', modelPath, '--lock-ms', 'soon']],
    [['--redis', 'redis://127.0.0.1:1', '--model', modelPath, '--tree', 'chain-2']],
    [['--redis', 'redis://127.0.0.1:1', '--model', modelPath, '--queue', 'a b']],
  ])('bad arguments %j print one line and exit 2', (args) => {
    const r = run(args);
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/^chimera: /);
  });

  test('a missing model is E_NOT_FOUND before any Redis connection', () => {
    const r = run(['--redis', 'redis://127.0.0.1:1', '--model', path.join(repoRoot, 'no-such-model.gguf')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^chimera: E_NOT_FOUND: /);
  });
});

describe('queue client without a Redis server', () => {
  test('an unreachable Redis rejects the job with QueueError within enqueueTimeoutMs; close() then ends cleanly', async () => {
    const port = await freePort();  // nothing listens there
    const c = createQueueClient({ connection: `redis://127.0.0.1:${port}`, enqueueTimeoutMs: 500 });
    const t = Date.now();
    await expect(c.complete('Once', { maxTokens: 2 })).rejects.toThrow(QueueError);
    expect(Date.now() - t).toBeLessThan(5000);
    await c.close();
    expect(() => createQueueClient({ connection: 'localhost:6379' })).toThrow(InvalidArgumentError);
    expect(() => createQueueClient({ connection: `redis://127.0.0.1:${port}`, queue: 'a b' })).toThrow(InvalidArgumentError);
  });
});
