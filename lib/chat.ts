// Chat formatting: a conversation rendered with the model's own chat template (Jinja, through
// @huggingface/jinja, the engine node-llama-cpp uses too), and the bookkeeping that lets a session keep
// its KV cache across turns: a new turn whose rendered text extends what the cache already holds only
// evaluates the new part.
import { Template } from '@huggingface/jinja';
import { FormatError, InvalidArgumentError, UnsupportedError } from './errors';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string;
}

/** The special token texts a template refers to (bos_token, eos_token). */
export interface ChatSpecialTokens {
  bos: string;
  eos: string;
}

export function checkMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0)
    throw new InvalidArgumentError('messages must be a non-empty array of { role, content }');
  for (const [i, m] of messages.entries()) {
    const msg = m as Partial<ChatMessage> | null;
    if (msg === null || typeof msg !== 'object' || typeof msg.role !== 'string' || msg.role === '' || typeof msg.content !== 'string')
      throw new InvalidArgumentError(`messages[${i}] must be { role: string, content: string }`);
  }
  return messages as ChatMessage[];
}

export class ChatTemplate {
  private readonly template: Template;

  constructor(readonly source: string, private readonly specials: ChatSpecialTokens) {
    if (typeof source !== 'string' || source.trim() === '')
      throw new UnsupportedError('this model has no chat template (tokenizer.chat_template); pass options.template');
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new FormatError(`the chat template does not parse: ${(err as Error).message}`);
    }
  }

  /** The conversation as the model expects it; with `addGenerationPrompt`, ending where the reply starts. */
  render(messages: ChatMessage[], addGenerationPrompt = true): string {
    try {
      return this.template.render({
        messages,
        add_generation_prompt: addGenerationPrompt,
        bos_token: this.specials.bos,
        eos_token: this.specials.eos,
      });
    } catch (err) {
      // Templates raise errors of their own (e.g. "Conversation roles must alternate user/assistant").
      throw new InvalidArgumentError(`the chat template refused the messages: ${(err as Error).message}`);
    }
  }
}

/**
 * What a session's cache holds of a conversation: the rendered text (with the last reply appended)
 * and the context length at that point. A turn whose rendering starts with that text continues it.
 */
export class ChatState {
  private text: string | undefined;
  private length = -1;

  /** The new part of `rendered` when it continues the cached conversation, else undefined. */
  continuation(rendered: string, contextLength: number): string | undefined {
    if (this.text === undefined || contextLength !== this.length || !rendered.startsWith(this.text)) return undefined;
    return rendered.slice(this.text.length);
  }

  /** Records the conversation the cache now holds. */
  update(renderedWithReply: string, contextLength: number): void {
    this.text = renderedWithReply;
    this.length = contextLength;
  }

  forget(): void {
    this.text = undefined;
    this.length = -1;
  }
}
