// SentencePiece-style BPE training: word counting, character selection, then classic BPE with
// incremental pair counts. Each merge touches only the words that contain the merged pair (found via
// per-pair word lists), and the most frequent pair comes from a lazily updated max-heap: an entry whose
// stored count is stale is re-queued with the current count when it surfaces, so the pair taken is
// always the exact argmax (count, then lexicographically smallest pair).
#include "train/bpe_trainer.h"

#include <algorithm>
#include <cstdint>
#include <queue>
#include <string_view>
#include <unordered_map>

#include "common/error.h"

namespace chimera {

namespace {

constexpr int kNumSpecial = 3;                       // <unk>, <s>, </s>
constexpr int kFirstText = kNumSpecial + 256;        // first id after the byte-fallback pieces (259)
constexpr int kMaxVocab = 1 << 22;

// Length of the valid UTF-8 character at s[0..n), or 0 when the byte there does not start one (the
// tokenizer splits such bytes off one at a time and byte-falls them back). Same rules as tokenizer.cpp:
// no overlongs, surrogates or values above U+10FFFF.
int utf8_char_len(const unsigned char* s, size_t n) {
  const unsigned char b = s[0];
  if (b < 0x80) return 1;
  int len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) len = 2;
  else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if ((size_t)len > n) return 0;
  for (int i = 1; i < len; i++) {
    const unsigned char c = s[i];
    if (c < (i == 1 ? lo : 0x80) || c > (i == 1 ? hi : 0xBF)) return 0;
  }
  return len;
}

// A character's UTF-8 bytes packed into one integer (unique: the lead byte fixes the length).
uint32_t pack_char(const unsigned char* s, int len) {
  uint32_t k = 0;
  for (int i = 0; i < len; i++) k = (k << 8) | s[i];
  return k;
}

bool is_newline(char c) { return c == '\n' || c == '\r'; }

uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
int32_t key_left(uint64_t k) { return (int32_t)(k >> 32); }
int32_t key_right(uint64_t k) { return (int32_t)(uint32_t)k; }

// Splits the (space-prefixed) text into SentencePiece words and counts them.
std::vector<std::pair<std::string_view, int64_t>> count_words(const std::string& work, bool isolate_newlines) {
  std::unordered_map<std::string_view, int64_t> counts;
  counts.reserve(1 << 16);
  const size_t n = work.size();
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    const bool end = i == n;
    const bool nl = !end && isolate_newlines && is_newline(work[i]);
    if (end || (work[i] == ' ' && i > start) || nl) {
      if (i > start) counts[std::string_view(work.data() + start, i - start)]++;
      start = i;
      if (nl) {  // the line break is a word of its own; the next character starts a new word
        counts[std::string_view(work.data() + i, 1)]++;
        start = i + 1;
      }
    }
  }
  std::vector<std::pair<std::string_view, int64_t>> words(counts.begin(), counts.end());
  std::sort(words.begin(), words.end());  // a fixed order, whatever the hash map did
  return words;
}

struct HeapEntry {
  int64_t count;
  int32_t left, right;
};

using Words = std::vector<std::pair<std::string_view, int64_t>>;

struct CharCount {
  std::string text;
  uint32_t key;
  int64_t count;
};

// ---- characters: every valid UTF-8 character of the words, the rare ones dropped (" " always kept),
// at most max_chars of them, most frequent first ----
std::vector<CharCount> select_characters(const Words& words, const BpeTrainOptions& opts) {
  std::unordered_map<uint32_t, int64_t> char_counts;
  std::unordered_map<uint32_t, std::string> char_text;
  for (const auto& w : words) {
    const auto* s = reinterpret_cast<const unsigned char*>(w.first.data());
    const size_t n = w.first.size();
    for (size_t i = 0; i < n;) {
      const int len = utf8_char_len(s + i, n - i);
      if (len == 0) {  // invalid byte: byte fallback
        i++;
        continue;
      }
      const uint32_t k = pack_char(s + i, len);
      auto it = char_counts.find(k);
      if (it == char_counts.end()) {
        char_counts.emplace(k, w.second);
        char_text.emplace(k, std::string(w.first.substr(i, (size_t)len)));
      } else {
        it->second += w.second;
      }
      i += (size_t)len;
    }
  }
  std::vector<CharCount> chars;
  for (const auto& c : char_counts) {
    if (c.second >= opts.min_char_count || c.first == (uint32_t)' ') chars.push_back({char_text[c.first], c.first, c.second});
  }
  const auto by_frequency = [](const CharCount& a, const CharCount& b) {
    return a.count != b.count ? a.count > b.count : a.text < b.text;
  };
  std::sort(chars.begin(), chars.end(), by_frequency);
  if (opts.max_chars > 0 && chars.size() > (size_t)opts.max_chars) {
    auto space = std::find_if(chars.begin(), chars.end(), [](const CharCount& c) { return c.text == " "; });
    if (space - chars.begin() >= opts.max_chars) std::swap(chars[(size_t)opts.max_chars - 1], *space);
    chars.resize((size_t)opts.max_chars);
    std::sort(chars.begin(), chars.end(), by_frequency);
  }
  return chars;
}

// The vocabulary being built and the indexes the merges need.
struct Vocabulary {
  TokenizerData d;
  std::unordered_map<std::string, int32_t> piece_id;
  std::vector<int32_t> piece_chars;                // characters per piece
  std::unordered_map<uint32_t, int32_t> char_id;  // packed character -> its piece

  int32_t add(const std::string& text, TokenType type, int32_t chars) {
    const int32_t id = (int32_t)d.pieces.size();
    piece_id.emplace(text, id);
    d.pieces.push_back(text);
    d.types.push_back(type);
    piece_chars.push_back(chars);
    return id;
  }
};

// ---- initial vocabulary: the 3 specials, the 256 byte pieces, then the characters ----
Vocabulary initial_vocabulary(const std::vector<CharCount>& chars) {
  Vocabulary v;
  v.add("<unk>", TokenType::Unknown, 1);
  v.add("<s>", TokenType::Control, 1);
  v.add("</s>", TokenType::Control, 1);
  static const char hex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; b++) v.add(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", TokenType::Byte, 1);
  // A character that spells a special or byte piece cannot happen (those are all multi-character).
  for (const CharCount& c : chars) v.char_id.emplace(c.key, v.add(c.text, TokenType::Normal, 1));
  return v;
}

// ---- word symbol sequences (split at characters that are not pieces: they never merge) ----
struct Sequences {
  std::vector<std::vector<int32_t>> seqs;
  std::vector<int64_t> freq;
};

Sequences word_sequences(const Words& words, const std::unordered_map<uint32_t, int32_t>& char_id) {
  Sequences out;
  std::vector<int32_t> cur;
  const auto flush = [&](int64_t f) {
    if (cur.size() >= 2) {
      out.seqs.push_back(cur);
      out.freq.push_back(f);
    }
    cur.clear();
  };
  for (const auto& w : words) {
    const auto* s = reinterpret_cast<const unsigned char*>(w.first.data());
    const size_t n = w.first.size();
    for (size_t i = 0; i < n;) {
      const int len = utf8_char_len(s + i, n - i);
      auto it = len ? char_id.find(pack_char(s + i, len)) : char_id.end();
      if (it == char_id.end()) {
        flush(w.second);
        i += len ? (size_t)len : 1;
        continue;
      }
      cur.push_back(it->second);
      i += (size_t)len;
    }
    flush(w.second);
  }
  return out;
}

// ---- pair statistics and merges: counts of adjacent pairs, the words each occurs in, and a lazily
// updated max-heap on (count, then the lexicographically smallest (left, right) piece pair) ----
class PairMerger {
 public:
  PairMerger(Vocabulary& v, Sequences& s)
      : v_(v), s_(s), heap_(Lower{&v.d.pieces}), stamp_(s.seqs.size(), -1) {
    pair_count_.reserve(1 << 16);
    pair_words_.reserve(1 << 16);
    for (size_t w = 0; w < s_.seqs.size(); w++) {
      const auto& seq = s_.seqs[w];
      for (size_t i = 0; i + 1 < seq.size(); i++) {
        const uint64_t k = pair_key(seq[i], seq[i + 1]);
        pair_count_[k] += s_.freq[w];
        auto& list = pair_words_[k];
        if (list.empty() || list.back() != (int32_t)w) list.push_back((int32_t)w);
      }
    }
    std::vector<HeapEntry> initial;
    initial.reserve(pair_count_.size());
    for (const auto& pc : pair_count_) initial.push_back({pc.second, key_left(pc.first), key_right(pc.first)});
    heap_ = Heap(Lower{&v.d.pieces}, std::move(initial));
  }

  // Merges the most frequent allowed pair; false when no pair is left.
  bool merge_next(int max_piece_chars) {
    while (!heap_.empty()) {
      const HeapEntry top = heap_.top();
      heap_.pop();
      const uint64_t key = pair_key(top.left, top.right);
      auto cit = pair_count_.find(key);
      const int64_t current = cit == pair_count_.end() ? 0 : cit->second;
      if (current != top.count) {
        if (current > 0 && top.count > current) heap_.push({current, top.left, top.right});
        continue;  // stale entry
      }
      if (current <= 0) continue;
      const int32_t id = piece_for(top.left, top.right, max_piece_chars);
      if (id < 0) continue;
      merges_done_++;
      apply(key, top.left, top.right, id);
      return true;
    }
    return false;
  }
  int64_t merges_done() const { return merges_done_; }

 private:
  struct Lower {
    const std::vector<std::string>* pieces;
    bool operator()(const HeapEntry& x, const HeapEntry& y) const {
      if (x.count != y.count) return x.count < y.count;
      if (x.left != y.left) return (*pieces)[(size_t)x.left] > (*pieces)[(size_t)y.left];
      return (*pieces)[(size_t)x.right] > (*pieces)[(size_t)y.right];
    }
  };
  using Heap = std::priority_queue<HeapEntry, std::vector<HeapEntry>, Lower>;

  // The piece a merge of (a, b) makes, added when new; -1 for a banned pair: too long, or spelling a
  // special / byte piece (those never come out of merging text).
  int32_t piece_for(int32_t a, int32_t b, int max_piece_chars) {
    if (v_.piece_chars[(size_t)a] + v_.piece_chars[(size_t)b] > max_piece_chars) return -1;
    const std::string joined = v_.d.pieces[(size_t)a] + v_.d.pieces[(size_t)b];
    auto pit = v_.piece_id.find(joined);
    if (pit != v_.piece_id.end()) return pit->second < kFirstText ? -1 : pit->second;  // "ab"+"c" after "a"+"bc"
    return v_.add(joined, TokenType::Normal, v_.piece_chars[(size_t)a] + v_.piece_chars[(size_t)b]);
  }

  // Rewrites every word holding the pair (a, b) with the new piece, updating pair counts and word lists.
  void apply(uint64_t key, int32_t a, int32_t b, int32_t new_id) {
    std::vector<int32_t> affected = std::move(pair_words_[key]);
    pair_words_.erase(key);
    for (int32_t w : affected) {
      if (stamp_[(size_t)w] == merge_no_) continue;
      stamp_[(size_t)w] = merge_no_;
      std::vector<int32_t>& seq = s_.seqs[(size_t)w];
      const int64_t f = s_.freq[(size_t)w];
      bool found = false;
      for (size_t i = 0; i + 1 < seq.size() && !found; i++) found = seq[i] == a && seq[i + 1] == b;
      if (!found) continue;  // stale list entry
      deltas_.clear();
      for (size_t i = 0; i + 1 < seq.size(); i++) deltas_.push_back({pair_key(seq[i], seq[i + 1]), -f});
      merged_.clear();
      for (size_t i = 0; i < seq.size(); i++) {
        if (i + 1 < seq.size() && seq[i] == a && seq[i + 1] == b) {
          merged_.push_back(new_id);
          i++;
        } else {
          merged_.push_back(seq[i]);
        }
      }
      seq.assign(merged_.begin(), merged_.end());
      for (size_t i = 0; i + 1 < seq.size(); i++) deltas_.push_back({pair_key(seq[i], seq[i + 1]), f});
      add_deltas(w);
    }
    pair_count_.erase(key);
    merge_no_++;
  }

  // Applies one word's pair count changes (deltas_, summed per pair).
  void add_deltas(int32_t w) {
    std::sort(deltas_.begin(), deltas_.end());
    for (size_t i = 0; i < deltas_.size();) {
      const uint64_t k = deltas_[i].first;
      int64_t sum = 0;
      for (; i < deltas_.size() && deltas_[i].first == k; i++) sum += deltas_[i].second;
      if (sum == 0) continue;
      int64_t& c = pair_count_[k];
      c += sum;
      if (sum > 0) {
        pair_words_[k].push_back(w);
        heap_.push({c, key_left(k), key_right(k)});
      } else if (c == 0) {
        pair_count_.erase(k);
      }
    }
  }

  Vocabulary& v_;
  Sequences& s_;
  std::unordered_map<uint64_t, int64_t> pair_count_;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words_;
  Heap heap_;
  std::vector<int32_t> stamp_;  // the merge that last rewrote each word
  std::vector<std::pair<uint64_t, int64_t>> deltas_;
  std::vector<int32_t> merged_;
  int32_t merge_no_ = 0;
  int64_t merges_done_ = 0;
};

void check_options(int vocab_size, const BpeTrainOptions& opts) {
  CHIMERA_CHECK(vocab_size > kFirstText && vocab_size <= kMaxVocab, ErrorCode::InvalidArg,
                "train_bpe_tokenizer: vocab_size ", vocab_size, " must be in ", kFirstText + 1, "..", kMaxVocab,
                " (3 special and 256 byte-fallback pieces come first)");
  CHIMERA_CHECK(opts.min_char_count >= 1, ErrorCode::InvalidArg, "train_bpe_tokenizer: min_char_count ",
                opts.min_char_count, " must be at least 1");
  CHIMERA_CHECK(opts.max_chars >= 0, ErrorCode::InvalidArg, "train_bpe_tokenizer: max_chars ", opts.max_chars,
                " must be >= 0 (0: no limit)");
  CHIMERA_CHECK(opts.max_piece_chars >= 2, ErrorCode::InvalidArg, "train_bpe_tokenizer: max_piece_chars ",
                opts.max_piece_chars, " must be at least 2");
}

}  // namespace

TokenizerData train_bpe_tokenizer(const std::string& text, int vocab_size, const BpeTrainOptions& opts) {
  CHIMERA_CHECK(!text.empty(), ErrorCode::InvalidArg, "train_bpe_tokenizer: the training text is empty");
  check_options(vocab_size, opts);
  const std::string work = " " + text;  // SentencePiece's dummy prefix
  const Words words = count_words(work, opts.isolate_newlines);
  const std::vector<CharCount> chars = select_characters(words, opts);
  CHIMERA_CHECK((int64_t)vocab_size >= (int64_t)kFirstText + (int64_t)chars.size(), ErrorCode::InvalidArg,
                "train_bpe_tokenizer: vocab_size ", vocab_size, " is too small: the 3 special and 256 byte pieces ",
                "plus the ", chars.size(), " characters that occur at least ", opts.min_char_count,
                " times already need ", kFirstText + chars.size(),
                "; raise vocab_size, min_char_count, or set max_chars");
  Vocabulary v = initial_vocabulary(chars);
  Sequences seqs = word_sequences(words, v.char_id);
  PairMerger merger(v, seqs);
  while ((int)v.d.pieces.size() < vocab_size && merger.merge_next(opts.max_piece_chars)) {
  }
  TokenizerData& d = v.d;
  CHIMERA_CHECK((int)d.pieces.size() == vocab_size, ErrorCode::InvalidArg, "train_bpe_tokenizer: the text only ",
                "supports ", d.pieces.size(), " pieces (", kFirstText, " special and byte pieces, ", chars.size(),
                " characters and ", d.pieces.size() - kFirstText - chars.size(), " merged pieces from ",
                merger.merges_done(), " merges), not ", vocab_size, "; lower vocab_size or give more text");

  // Scores: 0 for the specials and bytes, then -rank in vocabulary order (llama2.c / SentencePiece BPE).
  d.scores.assign(d.pieces.size(), 0.0f);
  for (size_t i = kFirstText; i < d.pieces.size(); i++) d.scores[i] = -(float)(i - kFirstText);
  d.unk = 0;
  d.bos = 1;
  d.eos = 2;
  d.add_bos = true;
  d.add_space_prefix = true;
  d.model = "llama";
  return std::move(v.d);
}

}  // namespace chimera
