// Tokenizer::encode: special tokens found in the text first (when asked, or user-defined ones of
// byte-level vocabularies), then each stretch of ordinary text through SentencePiece BPE or through
// the pre-tokenizer and byte-level BPE. Also the end-of-generation set.
#include "common/error.h"
#include "tokenizer/tokenizer.h"

namespace chimera {

void Tokenizer::build_special_sets() {
  const size_t n = data_.pieces.size();
  eog_.assign(n, 0);
  // As llama.cpp: tokens whose text marks the end of a turn or a fill-in-the-middle part are control
  // tokens whatever the file says, so that they are never produced from (or parsed in) plain text.
  for (size_t i = 0; i < n; i++) {
    const std::string& p = data_.pieces[i];
    const bool eog_text = is_eog_text(p);
    if (!eog_text && !is_fim_text(p)) continue;
    if (data_.types[i] == TokenType::Normal || data_.types[i] == TokenType::UserDefined || (int)data_.types[i] == 0)
      data_.types[i] = TokenType::Control;
    if (eog_text) eog_[i] = 1;
  }
  eot_ = data_.eot >= 0 ? data_.eot : find_eot_by_text(data_);
  for (int32_t id : {data_.eos, eot_, data_.eom}) {
    if (id >= 0) eog_[(size_t)id] = 1;
  }
  specials_ = SpecialTokenMatcher(data_);
}

std::vector<int32_t> Tokenizer::eog_tokens() const {
  std::vector<int32_t> out;
  for (size_t i = 0; i < eog_.size(); i++) {
    if (eog_[i]) out.push_back((int32_t)i);
  }
  return out;
}

void Tokenizer::encode_byte_level(const char* text, size_t n, std::vector<int32_t>& out) const {
  std::vector<CodePoint> cps;
  std::vector<std::pair<uint32_t, uint32_t>> words;
  pre_tokenize(pre_, text, n, cps, words);
  for (const auto& w : words) byte_bpe_.encode_word(text + w.first, w.second - w.first, out);
}

std::vector<int32_t> Tokenizer::encode(const std::string& text, bool add_bos, bool at_start, bool special) const {
  CHIMERA_CHECK(!data_.pieces.empty(), ErrorCode::InvalidArg, "tokenizer: not loaded");
  std::vector<int32_t> out;
  if (add_bos && data_.bos >= 0) out.push_back(data_.bos);
  if (text.empty()) return out;
  // SentencePiece vocabularies keep their historical behaviour without special parsing: no splitting.
  if (!byte_level() && !special) {
    encode_spm(text, at_start, out);
    return out;
  }
  std::vector<SpecialTokenMatcher::Fragment> fragments;
  specials_.split(text, special, fragments);
  bool prefix = at_start;  // SentencePiece: the dummy space also follows a special token (as llama.cpp)
  for (const auto& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prefix = true;
    } else if (byte_level()) {
      encode_byte_level(text.data() + f.begin, f.end - f.begin, out);
    } else {
      encode_spm(text.substr(f.begin, f.end - f.begin), prefix, out);
      prefix = false;
    }
  }
  return out;
}

}  // namespace chimera
