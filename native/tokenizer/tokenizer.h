// SentencePiece-style BPE tokenizer as LLaMA uses it: score- or merge-ranked BPE over UTF-8 code
// points, byte fallback <0xNN>, the dummy leading space, BOS/EOS. Built from GGUF metadata, a
// llama2.c tokenizer.bin, or a Hugging Face tokenizer.json.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

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
  // Piece text of each id, with SentencePiece's U+2581 already replaced by an ASCII space.
  std::vector<std::string> pieces;     // (V)
  std::vector<float> scores;           // (V) higher merges first (SentencePiece scores)
  std::vector<TokenType> types;        // (V)
  // Optional explicit merge ranks (HF tokenizer.json "merges"): "left right" -> rank (lower first).
  // When non-empty, BPE merges by rank instead of by score.
  std::vector<std::pair<std::string, std::string>> merges;
  int32_t bos = -1, eos = -1, unk = -1;
  bool add_bos = true;
  bool add_space_prefix = true;        // SentencePiece dummy prefix: " " before the text
  std::string model = "llama";         // "llama" (SentencePiece BPE)
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
  bool add_bos() const { return data_.add_bos; }
  const TokenizerData& data() const { return data_; }

  // Encodes text. `at_start`: the text begins a sequence, so the dummy space prefix applies (when the
  // tokenizer uses one); `add_bos`: prepend BOS.
  std::vector<int32_t> encode(const std::string& text, bool add_bos, bool at_start) const;

  // Bytes of one token when it follows `prev` (-1: the start of the text): control tokens give "", byte tokens their
  // raw byte, and the dummy-prefix space of a piece at the start of the text or right after BOS is dropped.
  std::string token_bytes(int32_t id, int32_t prev) const;

  // Whole-sequence decode (may contain broken UTF-8 if the ids do; the stream decoder does not).
  std::string decode(const std::vector<int32_t>& ids, int32_t prev = -1) const;

  bool is_eog(int32_t id) const { return id == data_.eos; }

 private:
  TokenizerData data_;
  std::unordered_map<std::string, int32_t> piece_to_id_;
  std::unordered_map<std::string, int32_t> merge_rank_;  // "left\x01right" -> rank
  int32_t byte_to_id_[256];
  std::vector<int16_t> id_to_byte_;  // raw byte of each byte-fallback id, -1 for other ids

  struct Symbol;  // one span of the text being merged (tokenizer.cpp)
  void validate_data() const;
  void build_byte_tables();
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
