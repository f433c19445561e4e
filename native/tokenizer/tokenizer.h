// The tokenizer of a model: SentencePiece-style BPE as LLaMA 1/2 uses it (score- or merge-ranked BPE
// over UTF-8 code points, byte fallback <0xNN>, the dummy leading space) or byte-level GPT-2-style BPE
// as Llama 3, Qwen2/3 and SmolLM use it (bpe_byte_level.h, pre_tokenizer.h); special tokens in text
// and the end-of-generation set (special_tokens.h). Built from GGUF metadata, a llama2.c
// tokenizer.bin, or a Hugging Face tokenizer.json.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/bpe_byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/special_tokens.h"

namespace chimera {

enum class TokenType : int32_t {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

struct TokenizerData {
  // Piece text of each id: for "llama", with SentencePiece's U+2581 already replaced by an ASCII space;
  // for "gpt2", as the file spells it (Normal pieces in the GPT-2 byte alphabet, others plain text).
  std::vector<std::string> pieces;     // (V)
  std::vector<float> scores;           // (V) higher merges first (SentencePiece scores)
  std::vector<TokenType> types;        // (V)
  // Optional explicit merge ranks (HF tokenizer.json "merges"): "left right" -> rank (lower first).
  // When non-empty, BPE merges by rank instead of by score.
  std::vector<std::pair<std::string, std::string>> merges;
  int32_t bos = -1, eos = -1, unk = -1;
  int32_t eot = -1, eom = -1;          // end of turn / of message (-1: found by text, or none)
  bool add_bos = true;
  bool add_space_prefix = true;        // SentencePiece dummy prefix: " " before the text
  std::string model = "llama";         // "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE)
  std::string pre;                     // gpt2: the pre-tokenizer name (llama.cpp's tokenizer.ggml.pre)
  bool ignore_merges = false;          // gpt2: a word that is a whole piece is that piece (Llama 3)
  std::string chat_template;           // the model's Jinja chat template, "" when it has none
};

class Tokenizer {
 public:
  Tokenizer() = default;
  // Validates the data (matching lengths, ids in range, byte pieces) and builds the lookup tables.
  // Duplicate pieces are allowed (real vocabularies repeat control pieces): the first id wins.
  explicit Tokenizer(TokenizerData data);

  int vocab_size() const { return (int)data_.pieces.size(); }
  int32_t bos() const { return data_.bos; }
  int32_t eos() const { return data_.eos; }
  int32_t eot() const { return eot_; }
  int32_t eom() const { return data_.eom; }
  bool add_bos() const { return data_.add_bos; }
  bool byte_level() const { return data_.model == "gpt2"; }
  const TokenizerData& data() const { return data_; }

  // Encodes text. `at_start`: the text begins a sequence, so the dummy space prefix applies (when the
  // tokenizer uses one); `add_bos`: prepend BOS. `special`: control tokens written in the text
  // ("<|eot_id|>") are those tokens, not text (user-defined tokens of byte-level vocabularies always are).
  std::vector<int32_t> encode(const std::string& text, bool add_bos, bool at_start, bool special = false) const;

  // Bytes of one token when it follows `prev` (-1: the start of the text): control tokens give "", byte tokens their
  // raw byte, and the dummy-prefix space of a piece at the start of the text or right after BOS is dropped.
  std::string token_bytes(int32_t id, int32_t prev) const;

  // Whole-sequence decode (may contain broken UTF-8 if the ids do; the stream decoder does not).
  std::string decode(const std::vector<int32_t>& ids, int32_t prev = -1) const;

  // End of generation: eos, eot, eom and the end-of-turn control tokens (special_tokens.h).
  bool is_eog(int32_t id) const { return id >= 0 && (size_t)id < eog_.size() && eog_[(size_t)id]; }
  std::vector<int32_t> eog_tokens() const;

 private:
  TokenizerData data_;
  int32_t eot_ = -1;
  std::vector<uint8_t> eog_;           // (V) 1 for end-of-generation ids
  SpecialTokenMatcher specials_;
  ByteLevelBpe byte_bpe_;              // gpt2 only
  PreTokenizer pre_ = PreTokenizer::Gpt2;
  std::unordered_map<std::string, int32_t> piece_to_id_;
  std::unordered_map<std::string, int32_t> merge_rank_;  // "left\x01right" -> rank
  int32_t byte_to_id_[256];
  std::vector<int16_t> id_to_byte_;  // raw byte of each byte-fallback id, -1 for other ids

  struct Symbol;  // one span of the text being merged (tokenizer.cpp)
  void validate_data() const;
  void build_byte_tables();
  void build_special_sets();           // tokenizer_encode.cpp
  void encode_spm(const std::string& text, bool at_start, std::vector<int32_t>& out) const;
  void encode_byte_level(const char* text, size_t n, std::vector<int32_t>& out) const;
  std::vector<Symbol> split_symbols(const std::string& text) const;
  bool pair_candidate(const std::string& text, const Symbol& a, const Symbol& b, double* priority,
                      int32_t* id) const;
  void merge_symbols(const std::string& text, std::vector<Symbol>& syms) const;
  void emit_symbol(const std::string& text, const Symbol& sym, std::vector<int32_t>& out) const;
};

// Turns a stream of token bytes into valid UTF-8 chunks: an incomplete character at the end of a
// token is held back until the next token completes it; invalid bytes become U+FFFD.
class Utf8StreamDecoder {
 public:
  // Appends bytes and returns the text that is complete so far.
  std::string push(const std::string& bytes);
  // Returns whatever is left (as U+FFFD for an unfinished character) and resets.
  std::string flush();

 private:
  std::string pending_;
};

}  // namespace chimera
