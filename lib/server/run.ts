// `chimera serve`: loads the model (and draft), serves it over HTTP until SIGTERM or SIGINT, then
// drains: new requests get 503, queued and running ones finish, the process exits 0. A second signal
// during the drain ends the process at once (the listeners are one-shot).
import * as fs from 'node:fs';
import { InvalidArgumentError } from '../errors';
import { loadModel } from '../model';
import type { SessionOptions } from '../options';
import { createServer } from './app';

export interface ServeOptions {
  model: string;
  draft?: string;
  tree?: SessionOptions['tree'];
  host: string;
  port: number;
  parallel: number;
  queueLimit: number;
  apiKey?: string;
  threads?: number;
  contextSize?: number;
  /** A file with a Jinja chat template for a model without one. */
  templateFile?: string;
  log?: (line: string) => void;
}

/** Serves until a termination signal has been handled; resolves when everything is closed. */
export async function runServe(o: ServeOptions): Promise<void> {
  const log = o.log ?? ((line: string) => process.stderr.write(`chimera serve: ${line}\n`));
  const chatTemplate = o.templateFile !== undefined ? fs.readFileSync(o.templateFile, 'utf8') : undefined;
  const model = await loadModel(o.model, { threads: o.threads });
  try {
    const draft = o.draft !== undefined ? await model.loadDraft(o.draft) : undefined;
    const app = createServer({
      model, draft, tree: o.tree, parallel: o.parallel, queueLimit: o.queueLimit, apiKey: o.apiKey,
      contextSize: o.contextSize, chatTemplate,
    });
    const stopped = new Promise<string>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    const url = await app.listen({ host: o.host, port: o.port }).catch((err: NodeJS.ErrnoException) => {
      // A busy or forbidden port is the user's to fix: one line, not a stack trace.
      throw new InvalidArgumentError(`cannot listen on ${o.host}:${o.port}: ${err.code ?? err.message}`);
    });
    const address = app.server.address();
    const where = typeof address === 'object' && address ? `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${address.port}` : url;
    log(`listening on ${where} (model ${model.info.path}${draft ? ' with a draft' : ''}, ${model.info.backend}, ` +
      `parallel ${o.parallel}, queue ${o.queueLimit}${o.apiKey ? ', API key required' : ''})`);
    const signal = await stopped;
    log(`${signal}: draining ${app.pool.active} running and ${app.pool.queued} queued requests`);
    await app.shutdown();
    log('closed');
  } finally {
    model.dispose();
  }
}
