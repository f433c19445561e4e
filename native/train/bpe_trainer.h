// Trains a SentencePiece-style BPE vocabulary from raw text, in the layout our Tokenizer (and llama.cpp's
// SPM tokenizer) encodes with: <unk>, <s>, </s>, the 256 byte-fallback pieces <0x00>..<0xFF>, the
// single characters of the text, then the learned merges. Scores are -rank in vocabulary order (the
// llama2.c convention), so the tokenizer's "highest-scoring concatenation merges first" rule replays
// the learned merge order.
#pragma once
#include <string>

#include "tokenizer/tokenizer.h"

namespace chimera {

struct BpeTrainOptions {
  // A character becomes a piece when it occurs at least this often (' ' is always a piece). Rarer
  // characters are left to byte fallback and never take part in merges.
  int min_char_count = 1;
  // At most this many single-character pieces (the most frequent ones); 0 = no limit.
  int max_chars = 0;
  // Learned pieces are at most this many characters long (SentencePiece's max_sentencepiece_length).
  int max_piece_chars = 16;
  // '\n' and '\r' are pieces of their own that never merge (SentencePiece trains on lines, so its
  // pieces never contain a line break). false: a line break is an ordinary character of its word.
  bool isolate_newlines = true;
};

// Learns a vocabulary of exactly `vocab_size` pieces from `text` (UTF-8; invalid bytes are left to byte
// fallback). Words are SentencePiece's: the text gets a leading space and every space starts a new
// word (" the", " cat"); merges never cross a word. Classic BPE: the most frequent adjacent pair merges
// first (ties: the lexicographically smallest (left, right) pair); a merge whose result already is a
// piece reuses it. Deterministic. Result: bos=1, eos=2, unk=0, add_bos, add_space_prefix.
// Throws E_INVALID_ARG for empty text, a vocab_size too small for the specials, bytes and characters,
// or text too small to learn that many pieces.
TokenizerData train_bpe_tokenizer(const std::string& text, int vocab_size, const BpeTrainOptions& opts = {});

}  // namespace chimera
