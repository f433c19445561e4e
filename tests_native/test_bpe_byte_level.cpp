// Byte-level BPE tests: the GPT-2 byte alphabet, the merge loop (short-word rescans and the long-word
// queue) against a plain string-based reference on seeded random words, special tokens with and
// without special parsing, the end-of-generation set, and streaming decode of split characters.
#include <map>
#include <string>
#include <vector>

#include "check.h"
#include "common/error.h"
#include "tokenizer/tokenizer.h"

using namespace chimera;
using Ids = std::vector<int32_t>;

namespace {

void test_alphabet() {
  std::string all;
  for (int b = 0; b < 256; b++) all.push_back((char)b);
  const std::string enc = byte_level_encode(all);
  std::string back;
  EXPECT(byte_level_decode(enc, &back) && back == all);
  EXPECT(byte_level_encode(" ") == "\xC4\xA0");   // Ġ
  EXPECT(byte_level_encode("\n") == "\xC4\x8A");  // Ċ
  EXPECT(byte_level_encode("A~!") == "A~!");
  EXPECT(!byte_level_decode("\xE4\xB8\xAD", &back));  // 中 is not in the alphabet
}

// A vocabulary of the 256 byte pieces and `n_merges` random merges over a few letters and the space.
TokenizerData random_vocab(test::Rng& rng, int n_merges) {
  TokenizerData d;
  d.model = "gpt2";
  d.pre = "gpt-2";
  std::vector<std::string> raw;  // raw bytes of each piece
  for (int b = 0; b < 256; b++) raw.push_back(std::string(1, (char)b));
  const std::string letters = "abc d";
  std::vector<int> pool;  // pieces merges are drawn from
  for (char c : letters) pool.push_back((unsigned char)c);
  std::map<std::string, int> seen;
  for (int i = 0; i < 256; i++) seen[raw[i]] = i;
  for (int m = 0; m < n_merges; m++) {
    const int l = pool[rng.below((int)pool.size())], r = pool[rng.below((int)pool.size())];
    const std::string joined = raw[l] + raw[r];
    d.merges.emplace_back(byte_level_encode(raw[l]), byte_level_encode(raw[r]));
    if (!seen.count(joined)) {
      seen[joined] = (int)raw.size();
      pool.push_back((int)raw.size());
      raw.push_back(joined);
    }
  }
  for (const std::string& p : raw) {
    d.pieces.push_back(byte_level_encode(p));
    d.scores.push_back(0.f);
    d.types.push_back(TokenType::Normal);
  }
  return d;
}

// Plain BPE on strings: merge the lowest-ranked adjacent pair (leftmost on ties) until none applies.
Ids reference_bpe(const TokenizerData& d, const std::string& word) {
  std::map<std::pair<std::string, std::string>, int> rank;
  for (size_t r = 0; r < d.merges.size(); r++) rank.emplace(d.merges[r], (int)r);
  std::vector<std::string> syms;
  for (char c : word) syms.push_back(byte_level_encode(std::string(1, c)));
  for (;;) {
    int best = -1, best_rank = 0;
    for (size_t k = 0; k + 1 < syms.size(); k++) {
      const auto it = rank.find({syms[k], syms[k + 1]});
      if (it != rank.end() && (best < 0 || it->second < best_rank)) {
        best = (int)k;
        best_rank = it->second;
      }
    }
    if (best < 0) break;
    syms[best] += syms[best + 1];
    syms.erase(syms.begin() + best + 1);
  }
  Ids ids;
  for (const std::string& s : syms) {
    for (size_t i = 0; i < d.pieces.size(); i++) {
      if (d.pieces[i] == s) { ids.push_back((int32_t)i); break; }
    }
  }
  return ids;
}

void test_merges_against_reference() {
  test::Rng rng(7);
  int words = 0, bad = 0;
  for (int v = 0; v < 4; v++) {
    const TokenizerData d = random_vocab(rng, 60 + 40 * v);
    const ByteLevelBpe bpe(d);
    for (int w = 0; w < 300; w++) {
      // Lengths up to 120 cover both the rescanning path (<= 32 bytes) and the queue.
      const int len = 1 + rng.below(w % 3 == 0 ? 120 : 20);
      std::string word;
      for (int i = 0; i < len; i++) word.push_back("abc d"[rng.below(5)]);
      Ids got;
      bpe.encode_word(word.data(), word.size(), got);
      words++;
      if (got != reference_bpe(d, word)) {
        if (bad++ < 5) std::fprintf(stderr, "word '%s' (vocab %d) differs from the reference\n", word.c_str(), v);
        test::failures()++;
      }
    }
  }
  std::printf("byte-level BPE vs plain reference: %d/%d random words identical\n", words - bad, words);
}

// 256 byte pieces, " h" "he" ... merges, and special tokens: <|eot|> control, <x> user-defined.
TokenizerData special_vocab() {
  TokenizerData d;
  d.model = "gpt2";
  d.pre = "llama-bpe";
  auto add = [&](const std::string& p, TokenType t) {
    d.pieces.push_back(p);
    d.scores.push_back(0.f);
    d.types.push_back(t);
    return (int32_t)d.pieces.size() - 1;
  };
  for (int b = 0; b < 256; b++) add(byte_level_encode(std::string(1, (char)b)), TokenType::Normal);
  add(byte_level_encode("he"), TokenType::Normal);   // 256
  add(byte_level_encode("hel"), TokenType::Normal);  // 257
  d.merges = {{"h", "e"}, {"he", "l"}};
  d.bos = add("<|begin|>", TokenType::Control);      // 258
  add("<|eot_id|>", TokenType::Control);             // 259
  add("<x>", TokenType::UserDefined);                // 260
  add("<|im_end|>", TokenType::Normal);              // 261: an end-of-turn text, made control
  d.eos = d.bos;
  return d;
}

void test_special_tokens() {
  const Tokenizer tok(special_vocab());
  const std::string text = "hel<|eot_id|>a<x>b";
  const Ids plain = tok.encode(text, false, true, false);
  const Ids special = tok.encode(text, false, true, true);
  EXPECT((special == Ids{257, 259, 'a', 260, 'b'}));
  // Without special parsing the control text is ordinary text; the user-defined token still matches.
  EXPECT(plain.size() > special.size() && plain[0] == 257);
  bool has_control = false;
  for (int32_t id : plain) has_control |= id == 259;
  EXPECT(!has_control);
  EXPECT(tok.decode(plain) == text);
  EXPECT(tok.encode("hel", true, true) == (Ids{258, 257}));
  // End of generation: eos, the <|eot_id|> text (also eot), and <|im_end|> made control.
  EXPECT(tok.is_eog(258) && tok.is_eog(259) && tok.is_eog(261) && !tok.is_eog(260) && !tok.is_eog(257));
  EXPECT(tok.eot() == 259);
  EXPECT(tok.data().types[261] == TokenType::Control);
  EXPECT(tok.token_bytes(259, -1).empty());  // control tokens print nothing
  EXPECT(tok.token_bytes(260, -1) == "<x>");
}

void test_stream_split_characters() {
  const Tokenizer tok(special_vocab());
  const std::string text = "\xF0\x9F\x98\x80\xE4\xB8\xAD!";  // 😀中! : one byte token each
  const Ids ids = tok.encode(text, false, true);
  EXPECT(ids.size() == 8);
  Utf8StreamDecoder utf8;
  std::string out;
  int32_t prev = -1;
  for (int32_t id : ids) {
    const std::string chunk = utf8.push(tok.token_bytes(id, prev));
    // A chunk is always whole characters: never a lead byte without its continuation.
    EXPECT(chunk.empty() || (unsigned char)chunk.back() < 0x80 || chunk == "\xF0\x9F\x98\x80" ||
           chunk == "\xE4\xB8\xAD");
    out += chunk;
    prev = id;
  }
  out += utf8.flush();
  EXPECT(out == text);
}

// Any byte string, valid UTF-8 or not, encodes and decodes back to itself, with and without special parsing.
void test_random_bytes_round_trip() {
  const Tokenizer tok(special_vocab());
  test::Rng rng(3);
  int bad = 0;
  for (int i = 0; i < 2000; i++) {
    std::string text;
    const int n = rng.below(48);
    for (int k = 0; k < n; k++) text.push_back(rng.below(3) ? "hel <x>\n'9"[rng.below(11)] : (char)rng.below(256));
    if (tok.decode(tok.encode(text, false, true)) != text) bad++;
  }
  EXPECT(bad == 0);
}

void test_bad_data() {
  TokenizerData d = special_vocab();
  d.pre = "no-such-pre";
  EXPECT_THROWS_CODE(Tokenizer{d}, ErrorCode::Unsupported);
  d = special_vocab();
  d.model = "wordpiece";
  EXPECT_THROWS_CODE(Tokenizer{d}, ErrorCode::Unsupported);
  d = special_vocab();
  d.eot = 100000;
  EXPECT_THROWS_CODE(Tokenizer{d}, ErrorCode::Format);
}

}  // namespace

int main() {
  test_alphabet();
  test_merges_against_reference();
  test_special_tokens();
  test_stream_split_characters();
  test_random_bytes_round_trip();
  test_bad_data();
  return test::finish("test_bpe_byte_level");
}
