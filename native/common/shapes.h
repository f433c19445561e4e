// Dimension letters used in every shape comment of the native core. Declared once here.
//
//   T    tokens in a forward batch (prefill chunk, 1 for decode, tree nodes for verification)
//   N    tokens already in the KV cache before the batch (n_past); N+T slots are visible to a batch
//   C    model width (embedding_length)
//   L    number of decoder layers
//   NH   query heads            NKV  key/value heads (GQA: NH % NKV == 0)
//   HS   head size (C / NH)     KVD  key/value width = NKV * HS
//   HD   FFN hidden width       V    vocabulary size
//   S    context size of a session (KV cache capacity in slots)
#pragma once
