// The chat template used for a model whose file has none (tokenizer.chat_template): ChatML, as
// llama.cpp's server falls back to. Its end-of-turn text is also a stop string, since a model without a
// template has no `<|im_end|>` token to end on.
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export const CHATML_STOP = '<|im_end|>';
