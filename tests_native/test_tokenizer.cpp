// Tokenizer tests: BPE by score and by merge rank, byte fallback, decode, the streaming UTF-8 decoder,
// data validation, and (when ../shared is present) stories260K's tok512 against golden.json.
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>

#include "check.h"
#include "common/error.h"
#include "tokenizer/tokenizer.h"

using chimera::ErrorCode;
using chimera::TokenizerData;
using chimera::Tokenizer;
using chimera::TokenType;
using Ids = std::vector<int32_t>;

namespace {

// Vocabulary laid out like llama2.c's: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0xNN>, then text pieces.
TokenizerData base_vocab() {
  TokenizerData d;
  auto add = [&](const std::string& p, TokenType t) {
    d.pieces.push_back(p);
    d.scores.push_back(0.f);
    d.types.push_back(t);
  };
  add("<unk>", TokenType::Unknown);
  add("<s>", TokenType::Control);
  add("</s>", TokenType::Control);
  for (int b = 0; b < 256; b++) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    add(name, TokenType::Byte);
  }
  d.bos = 1;
  d.eos = 2;
  d.unk = 0;
  return d;
}

int add_piece(TokenizerData& d, const std::string& p, float score) {
  d.pieces.push_back(p);
  d.scores.push_back(score);
  d.types.push_back(TokenType::Normal);
  return (int)d.pieces.size() - 1;
}

// Independent validator for the stream decoder's output (well-formed UTF-8, RFC 3629).
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char b = s[i];
    int len = b < 0x80 ? 1 : b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? b : b & (0xFF >> (len + 1));
    for (int k = 1; k < len; k++) {
      const unsigned char c = s[i + k];
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

void test_round_trip_and_fallback() {
  TokenizerData d = base_vocab();
  const char* chars[] = {" ", "h", "e", "l", "o", "w", "r", "d", "é"};
  for (const char* c : chars) add_piece(d, c, -100.f);
  const int he = add_piece(d, "he", -1.f), ll = add_piece(d, "ll", -2.f);
  const int hel = add_piece(d, " hé", -3.f), sp_h = add_piece(d, " h", -4.f);
  // "<s" + ">" would spell the control piece "<s>": merges must not produce it.
  for (const char* p : {"<", "s", ">", "<s"}) add_piece(d, p, 1.f);
  Tokenizer tok(d);

  const std::string text = "héllo wörld ✓ 😀";
  const Ids ids = tok.encode(text, true, true);
  EXPECT(ids.size() > 2 && ids[0] == 1);
  EXPECT(tok.decode(ids) == text);
  // " hé" beats " h" and "he" does not apply (the text has "hé"); "ll" merges.
  EXPECT(ids.size() > 3 && ids[1] == hel && ids[2] == ll);
  // "ö" is not a piece: its two bytes come from byte fallback (0xC3 0xB6 -> ids 3+b).
  bool found_o = false;
  for (size_t i = 0; i + 1 < ids.size(); i++) found_o |= ids[i] == 3 + 0xC3 && ids[i + 1] == 3 + 0xB6;
  EXPECT(found_o);
  // The emoji is four byte tokens.
  EXPECT(ids.size() >= 4 && Ids(ids.end() - 4, ids.end()) == (Ids{3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80}));

  // No dummy prefix mid-sequence. Decoding from the start of the text drops the dummy prefix (so text
  // round-trips); decoding after another token keeps every space.
  const Ids mid = tok.encode("hello", false, false);
  EXPECT(mid.size() == 3 && mid[0] == he && mid[1] == ll);
  EXPECT(tok.decode(mid) == "hello");
  EXPECT(tok.decode(tok.encode(" hello", false, true)) == " hello");
  EXPECT(tok.decode(tok.encode(" hello", false, true), /*prev=*/he) == "  hello");
  EXPECT(tok.encode("h", false, true) == (Ids{sp_h}));
  EXPECT(tok.encode("", true, true) == (Ids{1}));
  EXPECT(tok.encode("", false, true).empty());

  // Invalid UTF-8 bytes survive the round trip as byte tokens; a literal "<s>" stays text.
  const std::string junk = std::string("a\xFF") + "b\xE2\x82" + "<s>" + "\xC0";
  EXPECT(tok.decode(tok.encode(junk, false, false)) == junk);
  for (int32_t id : tok.encode("<s>", false, false)) EXPECT(id != 1);

  // Decoding: control pieces vanish, bytes are raw, the space after BOS is dropped once.
  EXPECT(tok.token_bytes(1, -1) == "" && tok.token_bytes(2, 5) == "");
  EXPECT(tok.token_bytes(3 + 'A', -1) == "A");
  EXPECT(tok.token_bytes(hel, 1) == "hé" && tok.token_bytes(hel, he) == " hé");
  EXPECT(tok.token_bytes(0, -1) == "<unk>");
  EXPECT_THROWS_CODE(tok.token_bytes(tok.vocab_size(), -1), ErrorCode::InvalidArg);
  EXPECT_THROWS_CODE(tok.token_bytes(-1, -1), ErrorCode::InvalidArg);
}

void test_unknown_without_byte_fallback() {
  TokenizerData d;
  d.pieces = {"<unk>", " ", "a"};
  d.scores = {0, 0, 0};
  d.types = {TokenType::Unknown, TokenType::Normal, TokenType::Normal};
  d.unk = 0;
  Tokenizer tok(d);
  EXPECT(tok.encode("aé", false, false) == (Ids{2, 0}));
  d.unk = -1;
  Tokenizer no_unk(d);
  EXPECT_THROWS_CODE(no_unk.encode("é", false, false), ErrorCode::InvalidArg);
}

void test_score_merges() {
  TokenizerData d = base_vocab();
  const int a = add_piece(d, "a", 0.f), b = add_piece(d, "b", 0.f), c = add_piece(d, "c", 0.f);
  const int ab = add_piece(d, "ab", 1.f), bc = add_piece(d, "bc", 2.f);
  d.add_space_prefix = false;
  EXPECT(Tokenizer(d).encode("abc", false, true) == (Ids{a, bc}));
  d.scores[bc] = 0.5f;
  EXPECT(Tokenizer(d).encode("abc", false, true) == (Ids{ab, c}));
  d.scores[bc] = 1.f;  // tie: the leftmost pair wins
  EXPECT(Tokenizer(d).encode("abc", false, true) == (Ids{ab, c}));
  EXPECT(Tokenizer(d).encode("bcab", false, true) == (Ids{bc, ab}));
  // Pieces formed by repeated merging: "aaaa" -> "aa" "aa" -> "aaaa".
  const int aa = add_piece(d, "aa", 3.f), aaaa = add_piece(d, "aaaa", 4.f);
  EXPECT(Tokenizer(d).encode("aaaa", false, true) == (Ids{aaaa}));
  EXPECT(Tokenizer(d).encode("aaaaa", false, true) == (Ids{aaaa, a}));
  EXPECT(Tokenizer(d).encode("aaa", false, true) == (Ids{aa, a}));
  (void)b;
}

void test_rank_merges() {
  TokenizerData d = base_vocab();
  const int a = add_piece(d, "a", 0.f), c = add_piece(d, "c", 0.f);
  add_piece(d, "b", 0.f);
  const int ab = add_piece(d, "ab", 9.f), bc = add_piece(d, "bc", -9.f), abc = add_piece(d, "abc", -9.f);
  d.add_space_prefix = false;
  // Scores favour "ab", but the merge list ranks "b c" first.
  d.merges = {{"b", "c"}, {"a", "b"}};
  EXPECT(Tokenizer(d).encode("abc", false, true) == (Ids{a, bc}));
  d.merges = {{"a", "b"}, {"b", "c"}};
  EXPECT(Tokenizer(d).encode("abc", false, true) == (Ids{ab, c}));
  // A piece in the vocabulary without a merge rule is never formed.
  d.merges = {{"a", "b"}};
  EXPECT(Tokenizer(d).encode("abc", false, true) == (Ids{ab, c}));
  d.merges = {{"a", "b"}, {"ab", "c"}};
  EXPECT(Tokenizer(d).encode("abc", false, true) == (Ids{abc}));
}

void test_stream_decoder() {
  const std::string text = "héllo wörld ✓ 😀 €";
  chimera::Utf8StreamDecoder dec;
  std::string all;
  for (char ch : text) {
    const std::string out = dec.push(std::string(1, ch));
    EXPECT(valid_utf8(out));
    all += out;
  }
  all += dec.flush();
  EXPECT(all == text);

  const std::string fffd = "\xEF\xBF\xBD";
  auto run = [](std::initializer_list<std::string> chunks) {
    chimera::Utf8StreamDecoder d;
    std::string out;
    for (const auto& c : chunks) out += d.push(c);
    return out + d.flush();
  };
  EXPECT(run({"a\xFF" "b"}) == "a" + fffd + "b");
  EXPECT(run({"a\xE2\x82", "x"}) == "a" + fffd + "x");           // bad continuation, known on the next push
  EXPECT(run({"\xC0\xAF"}) == fffd + fffd);                        // overlong
  EXPECT(run({"\xED\xA0\x80"}) == fffd + fffd + fffd);             // surrogate
  EXPECT(run({"\xF4\x90\x80\x80"}) == fffd + fffd + fffd + fffd);  // above U+10FFFF
  EXPECT(run({"ok\xF0\x9F"}) == "ok" + fffd);                      // unfinished at the end
  chimera::Utf8StreamDecoder d;
  EXPECT(d.push("\xE2\x82") == "");
  EXPECT(d.push("\xAC!") == "€!");
  EXPECT(d.flush() == "");
}

void test_bad_data() {
  EXPECT_THROWS_CODE(Tokenizer(TokenizerData{}), ErrorCode::Format);
  TokenizerData d = base_vocab();
  d.scores.pop_back();
  EXPECT_THROWS_CODE(Tokenizer{d}, ErrorCode::Format);
  d = base_vocab();
  d.bos = (int32_t)d.pieces.size();
  EXPECT_THROWS_CODE(Tokenizer{d}, ErrorCode::Format);
  d = base_vocab();
  d.pieces[3] = "<0xZZ>";
  EXPECT_THROWS_CODE(Tokenizer{d}, ErrorCode::Format);
  d = base_vocab();
  d.types[5] = (TokenType)42;
  EXPECT_THROWS_CODE(Tokenizer{d}, ErrorCode::Format);
  // Duplicate pieces are accepted and the first id wins.
  d = base_vocab();
  const int x = add_piece(d, "x", 0.f);
  add_piece(d, "x", 5.f);
  EXPECT(Tokenizer(d).encode("x", false, false) == (Ids{x}));
  // All-Normal vocabularies (llama2.c tokenizer.bin) still get byte fallback from "<0xNN>" pieces.
  d = base_vocab();
  for (auto& t : d.types) t = TokenType::Normal;
  Tokenizer plain(d);
  EXPECT(plain.encode("é", false, false) == (Ids{3 + 0xC3, 3 + 0xA9}));
  EXPECT(plain.decode({3 + 0xC3, 3 + 0xA9}) == "é");
}

// tok512.bin as the README describes it: int32 max_token_length, then 512 x {f32 score, i32 len, bytes}.
bool load_tok512(const std::string& path, TokenizerData& d) {
  std::ifstream f(path, std::ios::binary);
  std::string buf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t pos = 4;
  for (int i = 0; i < 512; i++) {
    float score;
    int32_t len;
    if (pos + 8 > buf.size()) return false;
    std::memcpy(&score, buf.data() + pos, 4);
    std::memcpy(&len, buf.data() + pos + 4, 4);
    pos += 8;
    if (len < 0 || pos + (size_t)len > buf.size()) return false;
    d.pieces.push_back(buf.substr(pos, (size_t)len));
    d.scores.push_back(score);
    d.types.push_back(i == 0 ? TokenType::Unknown : i <= 2 ? TokenType::Control
                      : i <= 258 ? TokenType::Byte : TokenType::Normal);
    pos += (size_t)len;
  }
  d.bos = 1;
  d.eos = 2;
  d.unk = 0;
  return pos == buf.size();
}

// llama2.c's encoder, verbatim in spirit (O(n^2) scan, merges over piece strings): the reference.
Ids llama2c_encode(const TokenizerData& d, const std::string& text) {
  auto find = [&](const std::string& s) {
    for (size_t i = 0; i < d.pieces.size(); i++) if (d.pieces[i] == s) return (int)i;
    return -1;
  };
  Ids t;
  if (!text.empty()) t.push_back(find(" "));
  for (size_t i = 0; i < text.size();) {
    size_t n = 1;
    while (i + n < text.size() && ((unsigned char)text[i + n] & 0xC0) == 0x80 && n < 4) n++;
    const int id = find(text.substr(i, n));
    if (id >= 0) t.push_back(id);
    else for (size_t k = 0; k < n; k++) t.push_back((unsigned char)text[i + k] + 3);
    i += n;
  }
  for (;;) {
    float best = -1e10f;
    int best_id = -1, best_i = -1;
    for (size_t i = 0; i + 1 < t.size(); i++) {
      const int id = find(d.pieces[t[i]] + d.pieces[t[i + 1]]);
      if (id >= 0 && d.scores[id] > best) { best = d.scores[id]; best_id = id; best_i = (int)i; }
    }
    if (best_i < 0) return t;
    t[best_i] = best_id;
    t.erase(t.begin() + best_i + 1);
  }
}

void test_stories260k(const std::string& path) {
  TokenizerData d;
  EXPECT(load_tok512(path, d));
  if (d.pieces.size() != 512) return;
  Tokenizer tok(d);
  EXPECT(tok.encode("Once upon a time", true, true) == (Ids{1, 403, 407, 261, 378}));
  // prompt_ids and case 0's output from golden.json (the llama2.c reference run).
  EXPECT(tok.encode("Lily and Tom", true, true) == (Ids{1, 317, 269, 274, 287}));
  EXPECT(tok.encode("The cat", true, true) == (Ids{1, 291, 280, 294}));
  const Ids out0 = {432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337,
                    410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394,
                    261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432,
                    398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310, 439, 419, 357, 336};
  EXPECT(tok.decode(out0, 378) ==
         ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a "
         "big, red ball. She wanted to play with it, but it was too high.\nLily's mom said");
  EXPECT(tok.decode(tok.encode("Once upon a time", true, true)) == "Once upon a time");

  // Random texts against the llama2.c reference encoder.
  const char* parts[] = {"a", "e", "t", "h", " ", "  ", "Lily", " the", ".", ",", "\n", "é", "✓", "😀", "ß", "x", "!"};
  test::Rng rng(7);
  int mismatches = 0;
  for (int iter = 0; iter < 150; iter++) {
    std::string s;
    const int n = 1 + rng.below(12);
    for (int k = 0; k < n; k++) s += parts[rng.below((int)(sizeof parts / sizeof parts[0]))];
    Ids ref = llama2c_encode(d, s);
    if (tok.encode(s, false, true) != ref) mismatches++;
    if (tok.decode(tok.encode(s, true, true)) != s) mismatches++;
  }
  EXPECT(mismatches == 0);

  // About 100 KB must encode quickly (priority-queue BPE, not the quadratic scan).
  std::string big;
  while (big.size() < 100000) big += "Once upon a time, Lily and Tom saw a cat. Ünïcödé ✓ 😀\n";
  const auto t0 = std::chrono::steady_clock::now();
  const Ids ids = tok.encode(big, true, true);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("encode %zu bytes -> %zu tokens in %.3f s\n", big.size(), ids.size(), sec);
  EXPECT(sec < 1.0);
  EXPECT(tok.decode(ids) == big);
}

}  // namespace

int main() {
  test_round_trip_and_fallback();
  test_unknown_without_byte_fallback();
  test_score_merges();
  test_rank_merges();
  test_stream_decoder();
  test_bad_data();
  const std::string tok512 = test::shared_dir() + "/models/stories260K/tok512.bin";
  if (test::file_exists(tok512)) test_stories260k(tok512);
  else std::printf("stories260K tok512: skipped: ../shared absent\n");
  return test::finish("test_tokenizer");
}
