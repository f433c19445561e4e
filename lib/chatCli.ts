// The interactive loop of `chimera chat`: reads user turns line by line (a terminal or a pipe), streams
// each reply, keeps the conversation (and the session's KV cache) across turns. `/reset` starts over,
// `/exit` or end of input quits; Ctrl-C stops a reply being written, and quits when none is.
import * as readline from 'node:readline';
import type { ChatMessage } from './chat';
import type { ChatOptions, Session } from './session';

export interface ChatLoopOptions {
  system?: string;
  generate: ChatOptions;
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Where the per-reply speed line goes (stderr), or nowhere. */
  status?: NodeJS.WritableStream;
}

export async function runChatLoop(session: Session, o: ChatLoopOptions): Promise<void> {
  const start = (): ChatMessage[] => (o.system ? [{ role: 'system', content: o.system }] : []);
  let messages = start();
  const rl = readline.createInterface({ input: o.input, output: o.output, terminal: (o.input as { isTTY?: boolean }).isTTY === true });
  let replying: AbortController | undefined;
  rl.on('SIGINT', () => {
    if (replying) replying.abort();
    else rl.close();
  });
  // Ctrl-C outside readline's handling (input from a pipe) does the same.
  const onSigint = () => (replying ? replying.abort() : rl.close());
  process.on('SIGINT', onSigint);
  const tty = (o.input as { isTTY?: boolean }).isTTY === true;
  const lines = rl[Symbol.asyncIterator]();  // buffers piped lines read ahead of the replies
  const ask = async (): Promise<string | undefined> => {
    if (tty) o.output.write('> ');
    const next = await lines.next();
    return next.done ? undefined : next.value;
  };
  try {
    for (;;) {
      const line = await ask();
      if (line === undefined || line.trim() === '/exit') break;
      if (line.trim() === '') continue;
      if (line.trim() === '/reset') {
        messages = start();
        session.reset();
        o.output.write('(conversation reset)\n');
        continue;
      }
      messages.push({ role: 'user', content: line });
      replying = new AbortController();
      const it = session.chat(messages, { ...o.generate, signal: replying.signal });
      let step = await it.next();
      while (!step.done) {
        o.output.write(step.value.text);
        step = await it.next();
      }
      replying = undefined;
      const r = step.value;
      o.output.write(r.aborted ? ' [stopped]\n' : '\n');
      messages.push(r.message);
      o.status?.write(`[${r.stats.generatedTokens} tokens, ${r.stats.tokensPerSecond.toFixed(1)} tok/s; ` +
        `${r.stats.promptTokensEvaluated} prompt tokens evaluated, ${r.stats.promptTokensReused} reused]\n`);
    }
  } finally {
    process.off('SIGINT', onSigint);
    rl.close();
  }
}
