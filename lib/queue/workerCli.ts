// `chimera worker`: loads the model (and draft) once, serves the queue until SIGINT or SIGTERM, then
// finishes the jobs it holds and exits. Status lines go to stderr.
import { loadModel } from '../model';
import type { SessionOptions } from '../options';
import { startQueueWorker } from './worker';

export interface WorkerCommand {
  redis: string;
  model: string;
  tokenizer?: string;
  draft?: string;
  tree?: string | number[][];
  lookup?: boolean;
  queue?: string;
  concurrency?: number;
  threads?: number;
  contextSize?: number;
  id?: string;
  lockMs?: number;
  stalledMs?: number;
}

export async function runWorkerCommand(c: WorkerCommand): Promise<void> {
  const model = await loadModel(c.model, { tokenizer: c.tokenizer, threads: c.threads });
  let name = c.id ?? '';
  const log = (line: string) => process.stderr.write(`chimera worker ${name}: ${line}\n`);
  try {
    const draft = c.draft !== undefined ? await model.loadDraft(c.draft) : undefined;
    const session: SessionOptions = { contextSize: c.contextSize, draft, tree: draft ? c.tree : undefined, lookup: c.lookup };
    const worker = startQueueWorker({
      connection: c.redis, model, session, queue: c.queue, concurrency: c.concurrency, id: c.id,
      lockDurationMs: c.lockMs, stalledIntervalMs: c.stalledMs, log,
    });
    name = worker.id;
    await worker.ready();
    log(`ready on queue '${c.queue ?? 'chimera'}' (${model.info.backend}, concurrency ${c.concurrency ?? 1})`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    log('stopping: finishing the jobs it holds');
    await worker.close();
  } finally {
    await model.dispose();
  }
}
