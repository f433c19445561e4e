// Shared pieces of the serve tests: the model, a server listening on a free loopback port, and the
// official openai client pointed at it.
import * as path from 'node:path';
import OpenAI from 'openai';
import type { ChimeraServer } from '../lib/server/app';
import { repoRoot } from './helpers';

export const storiesPath = path.join(repoRoot, 'models', 'stories260K.gguf');
export const KEY = 'sk-test-key';
export const PROMPT = 'Once upon a time';

export async function listen(app: ChimeraServer): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const a = app.server.address();
  if (!a || typeof a !== 'object') throw new Error('no address');
  return `http://127.0.0.1:${a.port}`;
}

export const clientOf = (base: string, apiKey = KEY) =>
  new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0, timeout: 60_000 });

/** The error an awaited promise rejects with (fails the test when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}
