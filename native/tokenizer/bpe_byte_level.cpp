// Byte-level BPE: the GPT-2 byte alphabet, the merge tables keyed by id pairs, and the merge loop.
#include "tokenizer/bpe_byte_level.h"

#include <queue>

#include "common/error.h"
#include "tokenizer/tokenizer.h"

namespace chimera {

namespace {

// GPT-2's bytes_to_unicode(): bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF keep their code point; the
// rest (controls, space, DEL, 0x80..0xA0, 0xAD) take U+0100 + n in byte order.
struct ByteAlphabet {
  uint16_t cp_of[256];
  int16_t byte_of[324];  // code point -> byte, -1 outside the alphabet (all code points are < 0x144)
  ByteAlphabet() {
    for (int16_t& b : byte_of) b = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
      const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      cp_of[b] = (uint16_t)(keep ? b : 256 + n++);
      byte_of[cp_of[b]] = (int16_t)b;
    }
  }
};

const ByteAlphabet kAlphabet;

uint64_t pair_key(int32_t l, int32_t r) { return (uint64_t)(uint32_t)l << 32 | (uint32_t)r; }

bool is_normal(TokenType t) { return t == TokenType::Normal || (int)t == 0; }

// Words up to this many symbols merge by rescanning the pairs (no allocation, cache friendly);
// longer ones (long runs of spaces, digits in GPT-2 style, base64) use the queue.
constexpr size_t kShortWord = 32;

}  // namespace

bool byte_level_decode(const std::string& piece, std::string* bytes) {
  bytes->clear();
  const auto* s = reinterpret_cast<const unsigned char*>(piece.data());
  for (size_t i = 0; i < piece.size();) {
    uint32_t cp;
    if (s[i] < 0x80) {
      cp = s[i];
      i += 1;
    } else if ((s[i] & 0xE0) == 0xC0 && i + 1 < piece.size() && (s[i + 1] & 0xC0) == 0x80) {
      cp = (uint32_t)(s[i] & 0x1F) << 6 | (s[i + 1] & 0x3F);
      i += 2;
    } else {
      return false;  // the alphabet is below U+0800: 1- and 2-byte characters only
    }
    if (cp >= sizeof(kAlphabet.byte_of) / sizeof(kAlphabet.byte_of[0]) || kAlphabet.byte_of[cp] < 0) return false;
    bytes->push_back((char)kAlphabet.byte_of[cp]);
  }
  return true;
}

std::string byte_level_encode(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    const uint16_t cp = kAlphabet.cp_of[b];
    if (cp < 0x80) {
      out.push_back((char)cp);
    } else {
      out.push_back((char)(0xC0 | (cp >> 6)));
      out.push_back((char)(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

ByteLevelBpe::ByteLevelBpe(const TokenizerData& d) : ignore_merges_(d.ignore_merges), unk_(d.unk) {
  const size_t n = d.pieces.size();
  bytes_.resize(n);
  word_id_.reserve(n);
  for (int& b : byte_id_) b = -1;
  std::string raw;
  for (size_t i = 0; i < n; i++) {
    if (is_normal(d.types[i]) && byte_level_decode(d.pieces[i], &raw)) {
      bytes_[i] = raw;
      word_id_.insert(raw, (int32_t)i);  // the first id wins for a repeated piece
      if (raw.size() == 1 && byte_id_[(unsigned char)raw[0]] < 0) byte_id_[(unsigned char)raw[0]] = (int32_t)i;
    } else {
      bytes_[i] = d.pieces[i];  // control / user-defined text is plain text, not the byte alphabet
    }
  }
  merges_.reserve(d.merges.size());
  std::string l, r;
  for (size_t rank = 0; rank < d.merges.size(); rank++) {
    const auto& m = d.merges[rank];
    if (!byte_level_decode(m.first, &l) || !byte_level_decode(m.second, &r)) continue;
    const int32_t li = word_id_.find(l.data(), l.size()), ri = word_id_.find(r.data(), r.size());
    l += r;
    const int32_t mi = word_id_.find(l.data(), l.size());
    if (li < 0 || ri < 0 || mi < 0) continue;
    merges_.insert(pair_key(li, ri), Merge{(int32_t)rank, mi});  // the first rank wins
  }
}

const ByteLevelBpe::Merge* ByteLevelBpe::find_merge(int32_t left, int32_t right) const {
  if (left < 0 || right < 0) return nullptr;
  return merges_.find(pair_key(left, right));
}

// ranks[k] holds the merge of the pair (k, k+1), so a merge looks up only the two pairs it changes.
void ByteLevelBpe::merge_short(std::vector<int32_t>& syms) const {
  const Merge* ranks[kShortWord];
  size_t m = syms.size();
  for (size_t k = 0; k + 1 < m; k++) ranks[k] = find_merge(syms[k], syms[k + 1]);
  while (m > 1) {
    size_t best = SIZE_MAX;
    for (size_t k = 0; k + 1 < m; k++) {
      if (ranks[k] && (best == SIZE_MAX || ranks[k]->rank < ranks[best]->rank)) best = k;
    }
    if (best == SIZE_MAX) break;
    syms[best] = ranks[best]->id;
    m--;  // symbol best + 1 leaves; later symbols and pairs move down one
    for (size_t k = best + 1; k < m; k++) syms[k] = syms[k + 1];
    for (size_t k = best + 1; k + 1 < m; k++) ranks[k] = ranks[k + 1];
    if (best > 0) ranks[best - 1] = find_merge(syms[best - 1], syms[best]);
    if (best + 1 < m) ranks[best] = find_merge(syms[best], syms[best + 1]);
  }
  syms.resize(m);
}

// The same merges with a queue of candidate pairs over a linked list; a popped pair still applies when
// both symbols are alive, adjacent and hold the ids recorded when it was queued.
void ByteLevelBpe::merge_long(std::vector<int32_t>& syms) const {
  struct Cand {
    int32_t rank;
    int left, right;
    int32_t left_id, right_id;
  };
  const auto worse = [](const Cand& x, const Cand& y) {
    return x.rank > y.rank || (x.rank == y.rank && x.left > y.left);
  };
  const int m = (int)syms.size();
  std::vector<int> prev(m), next(m);
  for (int i = 0; i < m; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < m ? i + 1 : -1;
  }
  std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> queue(worse);
  const auto push = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    if (const Merge* mg = find_merge(syms[l], syms[r])) queue.push({mg->rank, l, r, syms[l], syms[r]});
  };
  for (int i = 0; i + 1 < m; i++) push(i, i + 1);
  std::vector<bool> dead((size_t)m, false);
  while (!queue.empty()) {
    const Cand c = queue.top();
    queue.pop();
    if (dead[c.left] || dead[c.right] || next[c.left] != c.right || syms[c.left] != c.left_id ||
        syms[c.right] != c.right_id)
      continue;
    syms[c.left] = find_merge(c.left_id, c.right_id)->id;
    dead[c.right] = true;
    next[c.left] = next[c.right];
    if (next[c.right] >= 0) prev[next[c.right]] = c.left;
    push(prev[c.left], c.left);
    push(c.left, next[c.left]);
  }
  size_t w = 0;
  for (int i = 0; i >= 0 && i < m; i = next[i]) syms[w++] = syms[i];
  syms.resize(w);
}

void ByteLevelBpe::encode_word(const char* word, size_t n, std::vector<int32_t>& out) const {
  if (n == 0) return;
  if (ignore_merges_) {
    const int32_t id = word_id_.find(word, n);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  thread_local std::vector<int32_t> syms;
  syms.clear();
  for (size_t i = 0; i < n; i++) syms.push_back(byte_id_[(unsigned char)word[i]]);
  if (n <= kShortWord) merge_short(syms);
  else merge_long(syms);
  for (int32_t id : syms) {
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    CHIMERA_CHECK(unk_ >= 0, ErrorCode::InvalidArg,
                  "tokenizer: the text has a byte that the vocabulary has no token for (and no unknown token)");
    out.push_back(unk_);
  }
  if (syms.capacity() > (1u << 16)) std::vector<int32_t>().swap(syms);  // a huge word keeps no memory
}

}  // namespace chimera
