// Byte-level (GPT-2 style) BPE as Llama 3, Qwen2/3 and SmolLM use it: vocabulary pieces spell bytes
// with the GPT-2 byte-to-unicode alphabet ("Ġ" is the space byte), each pre-token word starts as one
// symbol per byte, and adjacent pairs merge by rank (lowest first, leftmost on ties) until no listed
// merge applies. The tables here are built on raw bytes, so the alphabet is only decoded once, at load.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/flat_maps.h"

namespace chimera {

struct TokenizerData;

// GPT-2's byte <-> unicode alphabet: printable Latin-1 bytes stand for themselves, the other 68 bytes
// for U+0100.. in order. Decodes a piece to its bytes; false when a character is outside the alphabet.
bool byte_level_decode(const std::string& piece, std::string* bytes);
std::string byte_level_encode(const std::string& bytes);

class ByteLevelBpe {
 public:
  ByteLevelBpe() = default;
  // Builds the tables from data.pieces / data.merges in the alphabet form (files keep it). Only Normal
  // pieces take part in BPE; merges naming unknown pieces are ignored (they can never apply).
  explicit ByteLevelBpe(const TokenizerData& data);

  // Appends the ids of one pre-token word (raw bytes).
  void encode_word(const char* word, size_t n, std::vector<int32_t>& out) const;

  // Raw bytes of a Normal piece (others: their text).
  const std::string& bytes(int32_t id) const { return bytes_[(size_t)id]; }

 private:
  struct Merge {
    int32_t rank;
    int32_t id;  // the merged piece
  };
  std::vector<std::string> bytes_;    // (V)
  FlatWordMap word_id_;               // raw bytes of a Normal piece -> id
  FlatU64Map<Merge> merges_;          // (left id << 32 | right id) -> merge
  int32_t byte_id_[256];
  bool ignore_merges_ = false;  // a word that is a whole piece is that piece (Llama 3)
  int32_t unk_ = -1;

  const Merge* find_merge(int32_t left, int32_t right) const;
  void merge_short(std::vector<int32_t>& syms) const;
  void merge_long(std::vector<int32_t>& syms) const;
};

}  // namespace chimera
