// Turns a job's output stream, which may hold several attempts (a worker died mid-job and another
// started over), into one clean chunk sequence: entries of superseded attempts are dropped, a new
// attempt's output is held back while it repeats what was already streamed, and only its new part is
// passed on. Where a new attempt's output differs (sampling on different hardware), a `restart` chunk
// carries its whole text so far. Invariant: the chunks since the last restart join to the final text.
import type { QueueChunk, StreamEntry } from './protocol';

function startsWith<T>(long: readonly T[], short: readonly T[]): boolean {
  if (short.length > long.length) return false;
  for (let i = 0; i < short.length; i++) if (long[i] !== short[i]) return false;
  return true;
}

export class AttemptReassembler {
  /** The attempt whose entries count; earlier attempts' entries are ignored. */
  attempt = 0;
  /** Times a new attempt's output differed from what had been streamed. */
  restarts = 0;
  private emittedText = '';
  private emittedTokens: number[] = [];
  private text = '';
  private tokens: number[] = [];

  /** false for an entry of a superseded attempt (to be ignored). */
  admit(entry: StreamEntry): boolean {
    if (entry.attempt < this.attempt) return false;
    if (entry.attempt > this.attempt) {
      this.attempt = entry.attempt;
      this.text = '';
      this.tokens = [];
    }
    return true;
  }

  /** A chunk of the current attempt; returns what to pass on, if anything. */
  chunk(text: string, tokens: number[]): QueueChunk | undefined {
    this.text += text;
    this.tokens.push(...tokens);
    return this.sync();
  }

  /** The attempt's final text and tokens: returns a restart chunk if what was streamed differs. */
  finish(text: string, tokens: number[]): QueueChunk | undefined {
    this.text = text;
    this.tokens = [...tokens];
    const out = this.sync();
    if (this.emittedText === text && tokens.length === this.emittedTokens.length && startsWith(tokens, this.emittedTokens))
      return out;
    // The attempt ended shorter than what an earlier attempt had streamed.
    return this.restart();
  }

  private sync(): QueueChunk | undefined {
    const textOk = this.text.startsWith(this.emittedText) || this.emittedText.startsWith(this.text);
    const tokensOk = startsWith(this.tokens, this.emittedTokens) || startsWith(this.emittedTokens, this.tokens);
    if (!textOk || !tokensOk) return this.restart();
    const text = this.text.length > this.emittedText.length ? this.text.slice(this.emittedText.length) : '';
    const tokens = this.tokens.length > this.emittedTokens.length ? this.tokens.slice(this.emittedTokens.length) : [];
    if (text === '' && tokens.length === 0) return undefined;
    if (text !== '') this.emittedText = this.text;
    if (tokens.length > 0) this.emittedTokens = [...this.tokens];
    return { text, tokens };
  }

  private restart(): QueueChunk {
    this.restarts++;
    this.emittedText = this.text;
    this.emittedTokens = [...this.tokens];
    return { text: this.text, tokens: [...this.tokens], restart: true };
  }
}
