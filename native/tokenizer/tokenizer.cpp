// The tokenizer's tables and SentencePiece-style BPE (score- or merge-rank-driven), token bytes for
// decoding, and the streaming UTF-8 decoder. Encoding entry and special tokens: tokenizer_encode.cpp.
#include "tokenizer/tokenizer.h"

#include <cmath>
#include <queue>

#include "common/error.h"

namespace chimera {

namespace {

// Classifies the UTF-8 sequence at s[0..n): > 0 is the length of a complete valid character; 0 means
// the bytes so far are a valid but unfinished prefix; -k means invalid, with k >= 1 bytes (the maximal
// valid subpart) to replace by one U+FFFD. Rejects overlongs, surrogates and values above U+10FFFF.
int utf8_check(const unsigned char* s, size_t n) {
  const unsigned char b = s[0];
  if (b < 0x80) return 1;
  int len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) len = 2;
  else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0) lo = 0xA0;        // overlong
    if (b == 0xED) hi = 0x9F;        // surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0) lo = 0x90;        // overlong
    if (b == 0xF4) hi = 0x8F;        // above U+10FFFF
  } else {
    return -1;                       // continuation byte, C0/C1 or F5..FF as a lead
  }
  for (int i = 1; i < len; i++) {
    if ((size_t)i >= n) return 0;
    const unsigned char c = s[i];
    const unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
    if (c < l || c > h) return -i;
  }
  return len;
}

// "<0xNN>" (either hex case) -> NN, anything else -> -1.
int parse_byte_piece(const std::string& p) {
  if (p.size() != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int h = hex(p[3]), l = hex(p[4]);
  return h < 0 || l < 0 ? -1 : h * 16 + l;
}

// Only text tokens take part in BPE; control, unknown, unused and byte pieces must never be produced
// by merging ordinary text (e.g. a literal "<s>" in the prompt stays text).
bool is_text_type(TokenType t) {
  return t != TokenType::Control && t != TokenType::Unknown && t != TokenType::Unused && t != TokenType::Byte;
}

const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

struct Tokenizer::Symbol {
  size_t start = 0, len = 0;  // span of the (prefixed) input text; len 0 = merged away
  int prev = -1, next = -1;   // neighbours in the linked list
  int32_t id = -1;            // vocab id of the span (text symbols)
  bool fallback = false;      // not a vocab piece: emitted as byte tokens, never merged
};

Tokenizer::Tokenizer(TokenizerData data) : data_(std::move(data)) {
  validate_data();
  build_special_sets();
  if (byte_level()) {  // its own tables (bpe_byte_level.h); the SentencePiece ones stay empty
    pre_ = pre_tokenizer_from_name(data_.pre);
    byte_bpe_ = ByteLevelBpe(data_);
    return;
  }
  const int32_t n = vocab_size();
  piece_to_id_.reserve((size_t)n * 2);
  for (int32_t i = 0; i < n; i++) piece_to_id_.emplace(data_.pieces[i], i);  // emplace keeps the first id
  for (size_t r = 0; r < data_.merges.size(); r++) {
    const auto& m = data_.merges[r];
    merge_rank_.emplace(m.first + '\x01' + m.second, (int32_t)r);  // a repeated merge keeps its best rank
  }
  build_byte_tables();
}

void Tokenizer::validate_data() const {
  const size_t n = data_.pieces.size();
  CHIMERA_CHECK(n > 0, ErrorCode::Format, "tokenizer: the vocabulary is empty");
  CHIMERA_CHECK(n <= (size_t)INT32_MAX, ErrorCode::Format, "tokenizer: vocabulary too large (", n, ")");
  CHIMERA_CHECK(data_.scores.size() == n && data_.types.size() == n, ErrorCode::Format,
                "tokenizer: ", n, " pieces but ", data_.scores.size(), " scores and ", data_.types.size(),
                " token types");
  CHIMERA_CHECK(data_.model == "llama" || data_.model == "gpt2", ErrorCode::Unsupported, "tokenizer: model '",
                data_.model, "' is not supported (only 'llama', SentencePiece BPE, and 'gpt2', byte-level BPE)");
  const std::pair<const char*, int32_t> specials[] = {{"bos", data_.bos}, {"eos", data_.eos}, {"unk", data_.unk},
                                                      {"eot", data_.eot}, {"eom", data_.eom}};
  for (const auto& s : specials) {
    CHIMERA_CHECK(s.second >= -1 && s.second < (int64_t)n, ErrorCode::Format, "tokenizer: ", s.first,
                  " id ", s.second, " is outside the vocabulary of ", n);
  }
  // Scores order the merges; a NaN would break the merge queue's ordering.
  for (size_t i = 0; i < n; i++)
    CHIMERA_CHECK(!std::isnan(data_.scores[i]), ErrorCode::Format, "tokenizer: token ", i, " has a NaN score");
  for (size_t i = 0; i < n; i++) {
    const int t = (int)data_.types[i];
    // 0 is llama.cpp's "undefined" type; it is handled like Normal.
    CHIMERA_CHECK(t >= 0 && t <= (int)TokenType::Byte, ErrorCode::Format, "tokenizer: token ", i,
                  " has invalid type ", t);
  }
}

// Byte-fallback pieces: those typed Byte; when no piece is typed Byte (llama2.c's tokenizer.bin marks
// everything Normal), the pieces spelled exactly "<0xNN>".
void Tokenizer::build_byte_tables() {
  const int32_t n = vocab_size();
  for (int b = 0; b < 256; b++) byte_to_id_[b] = -1;
  id_to_byte_.assign((size_t)n, -1);
  bool any_byte_type = false;
  for (TokenType t : data_.types) any_byte_type |= (t == TokenType::Byte);
  for (int32_t i = 0; i < n; i++) {
    const bool typed = data_.types[i] == TokenType::Byte;
    if (any_byte_type && !typed) continue;
    const int b = parse_byte_piece(data_.pieces[i]);
    if (b < 0) {
      CHIMERA_CHECK(!typed, ErrorCode::Format, "tokenizer: byte token ", i, " is not named <0xNN>");
      continue;
    }
    id_to_byte_[i] = (int16_t)b;
    if (byte_to_id_[b] < 0) byte_to_id_[b] = i;
  }
}

// One symbol per UTF-8 character (a lone invalid byte is its own symbol). Characters that are not a
// text piece of the vocabulary are marked for byte fallback.
std::vector<Tokenizer::Symbol> Tokenizer::split_symbols(const std::string& text) const {
  std::vector<Symbol> syms;
  syms.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    int len = utf8_check(s + pos, text.size() - pos);
    if (len <= 0) len = 1;
    Symbol sym;
    sym.start = pos;
    sym.len = (size_t)len;
    sym.prev = (int)syms.size() - 1;
    sym.next = (int)syms.size() + 1;
    auto it = piece_to_id_.find(text.substr(pos, (size_t)len));
    if (it != piece_to_id_.end() && is_text_type(data_.types[it->second])) sym.id = it->second;
    else sym.fallback = true;
    syms.push_back(sym);
    pos += (size_t)len;
  }
  if (!syms.empty()) syms.back().next = -1;
  return syms;
}

// Whether a and b (adjacent) can merge, and how urgently: by score (higher first) or, when the
// vocabulary has explicit merges, by rank (lower first, expressed as a higher negated priority).
bool Tokenizer::pair_candidate(const std::string& text, const Symbol& a, const Symbol& b, double* priority,
                               int32_t* id) const {
  if (a.fallback || b.fallback) return false;
  auto it = piece_to_id_.find(text.substr(a.start, a.len + b.len));
  if (it == piece_to_id_.end() || !is_text_type(data_.types[it->second])) return false;
  if (merge_rank_.empty()) {
    *priority = data_.scores[it->second];
  } else {
    auto r = merge_rank_.find(text.substr(a.start, a.len) + '\x01' + text.substr(b.start, b.len));
    if (r == merge_rank_.end()) return false;
    *priority = -(double)r->second;
  }
  *id = it->second;
  return true;
}

// BPE with a priority queue over adjacent pairs; stale entries are skipped when popped (a pair is
// still valid when both symbols are alive, adjacent, and have the lengths recorded when queued).
void Tokenizer::merge_symbols(const std::string& text, std::vector<Symbol>& syms) const {
  struct Cand {
    double priority;
    int left, right;
    size_t len;
    int32_t id;
  };
  // Highest priority first; the leftmost pair wins ties.
  auto worse = [](const Cand& x, const Cand& y) {
    return x.priority < y.priority || (x.priority == y.priority && x.left > y.left);
  };
  std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> queue(worse);
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    double p;
    int32_t id;
    if (pair_candidate(text, syms[l], syms[r], &p, &id)) queue.push({p, l, r, syms[l].len + syms[r].len, id});
  };
  for (int i = 0; i + 1 < (int)syms.size(); i++) try_add(i, i + 1);
  while (!queue.empty()) {
    const Cand c = queue.top();
    queue.pop();
    Symbol& l = syms[c.left];
    Symbol& r = syms[c.right];
    if (l.len == 0 || r.len == 0 || l.next != c.right || l.len + r.len != c.len) continue;
    l.len += r.len;
    l.id = c.id;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.left;
    r.len = 0;
    try_add(l.prev, c.left);
    try_add(c.left, l.next);
  }
}

void Tokenizer::emit_symbol(const std::string& text, const Symbol& sym, std::vector<int32_t>& out) const {
  if (!sym.fallback) {
    out.push_back(sym.id);
    return;
  }
  bool all_bytes = true;
  for (size_t i = 0; i < sym.len; i++) all_bytes &= byte_to_id_[(unsigned char)text[sym.start + i]] >= 0;
  if (all_bytes) {
    for (size_t i = 0; i < sym.len; i++) out.push_back(byte_to_id_[(unsigned char)text[sym.start + i]]);
  } else {
    CHIMERA_CHECK(data_.unk >= 0, ErrorCode::InvalidArg, "tokenizer: the text contains a character that the "
                  "vocabulary cannot encode (no byte fallback and no unknown token)");
    out.push_back(data_.unk);
  }
}

void Tokenizer::encode_spm(const std::string& text, bool at_start, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  // The dummy prefix is a real character of the text, so it merges with what follows (" Once").
  const std::string work = data_.add_space_prefix && at_start ? " " + text : text;
  std::vector<Symbol> syms = split_symbols(work);
  merge_symbols(work, syms);
  for (int i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next) emit_symbol(work, syms[i], out);
}

std::string Tokenizer::token_bytes(int32_t id, int32_t prev) const {
  CHIMERA_CHECK(id >= 0 && id < vocab_size(), ErrorCode::InvalidArg, "token id ", id,
                " is outside the vocabulary of ", vocab_size());
  if (!byte_level() && id_to_byte_[id] >= 0) return std::string(1, (char)id_to_byte_[id]);
  switch (data_.types[id]) {
    case TokenType::Control:
    case TokenType::Unused:
      return "";
    default:
      break;
  }
  if (byte_level()) return byte_bpe_.bytes(id);
  const std::string& piece = data_.pieces[id];
  // SentencePiece's dummy prefix: the first word after BOS carries a space the text did not have.
  if ((prev < 0 || prev == data_.bos) && data_.add_space_prefix && !piece.empty() && piece[0] == ' ') {
    return piece.substr(1);
  }
  return piece;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, int32_t prev) const {
  std::string out;
  for (int32_t id : ids) {
    out += token_bytes(id, prev);
    prev = id;
  }
  return out;
}

std::string Utf8StreamDecoder::push(const std::string& bytes) {
  pending_ += bytes;
  const auto* s = reinterpret_cast<const unsigned char*>(pending_.data());
  const size_t n = pending_.size();
  std::string out;
  out.reserve(n);
  size_t pos = 0;
  while (pos < n) {
    const int r = utf8_check(s + pos, n - pos);
    if (r == 0) break;  // unfinished character: hold it back for the next push
    if (r > 0) {
      out.append(pending_, pos, (size_t)r);
      pos += (size_t)r;
    } else {
      out += kReplacement;
      pos += (size_t)-r;
    }
  }
  pending_.erase(0, pos);
  return out;
}

std::string Utf8StreamDecoder::flush() {
  // pending_ only ever holds one valid-but-unfinished prefix, so it is one replacement character.
  std::string out = pending_.empty() ? std::string() : std::string(kReplacement);
  pending_.clear();
  return out;
}

}  // namespace chimera
