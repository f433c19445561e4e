// Pre-tokenizer tests: the hand-written matchers against the JS regexes' splits of a generated corpus
// (pre_tokenizer_cases.inc, from scripts/gen-pre-tokenizer-cases.js), the code point class table, and
// the refusal of unknown pre-tokenizer names.
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "common/error.h"
#include "tokenizer/pre_tokenizer.h"

using namespace chimera;

namespace {

struct Case {
  const char* pre;
  const char* text;
  std::vector<int> lens;
};

const Case kCases[] = {
#include "pre_tokenizer_cases.inc"
};

std::string show(const std::string& text, const std::vector<std::pair<uint32_t, uint32_t>>& words) {
  std::string out;
  for (const auto& w : words) out += "[" + text.substr(w.first, w.second - w.first) + "]";
  return out;
}

void test_against_js_regexes() {
  std::vector<CodePoint> cps;
  std::vector<std::pair<uint32_t, uint32_t>> words;
  int bad = 0, n = 0;
  for (const Case& c : kCases) {
    const std::string text = c.text;
    words.clear();
    pre_tokenize(pre_tokenizer_from_name(c.pre), text.data(), text.size(), cps, words);
    std::vector<int> lens;
    for (const auto& w : words) lens.push_back((int)(w.second - w.first));
    n++;
    if (lens != c.lens) {
      if (bad++ < 10) std::fprintf(stderr, "%s: '%s' split as %s\n", c.pre, c.text, show(text, words).c_str());
      test::failures()++;
    }
  }
  std::printf("pre-tokenizers vs JS regexes: %d/%d cases identical\n", n - bad, n);
}

void test_classes() {
  EXPECT(cp_class('a') == kLetter && cp_class('Z') == kLetter && cp_class('5') == kNumber);
  EXPECT(cp_class(' ') == kSpace && cp_class('\n') == kSpace && cp_class(0x3000) == kSpace);
  EXPECT(cp_class(0x4E2D) == kLetter);  // 中
  EXPECT(cp_class(0x0663) == kNumber);  // Arabic-Indic three
  EXPECT(cp_class(0x1F600) == kOther);  // 😀
  EXPECT(cp_class(0x0301) == kOther);   // combining acute (Mn, not L)
  EXPECT(cp_class(0xFEFF) == kOther);   // not White_Space (JS's \s would say space)
  EXPECT(cp_class(0x10FFFF) == kOther);
}

void test_invalid_utf8_keeps_bytes() {
  const std::string text = std::string("ab\xff\xc3 c\xe4\xb8", 8);
  std::vector<CodePoint> cps;
  std::vector<std::pair<uint32_t, uint32_t>> words;
  pre_tokenize(PreTokenizer::Llama3, text.data(), text.size(), cps, words);
  size_t covered = 0;
  for (const auto& w : words) {
    EXPECT(w.first == covered);
    covered = w.second;
  }
  EXPECT(covered == text.size());
}

// Seeded random byte strings (ASCII, pieces of UTF-8 characters, arbitrary bytes): every pre-tokenizer
// covers the input with non-empty, contiguous words.
void test_random_bytes_covered() {
  test::Rng rng(11);
  const char* const parts[] = {"a", "Z", "7", " ", "  ", "\n", "\r", "\t", "'", "'s", ".", "\xC3\xA9", "\xE4\xB8",
                               "\xAD", "\xF0\x9F\x98\x80", "\xFF", "\xC2\xA0", "\x00", "\xE2\x80\xA8"};
  const PreTokenizer kinds[] = {PreTokenizer::Llama3, PreTokenizer::Qwen2, PreTokenizer::Gpt2, PreTokenizer::SmolLM};
  std::vector<CodePoint> cps;
  std::vector<std::pair<uint32_t, uint32_t>> words;
  int bad = 0;
  for (int i = 0; i < 3000; i++) {
    std::string text;
    const int n = rng.below(40);
    for (int k = 0; k < n; k++) {
      const char* p = parts[rng.below((int)(sizeof(parts) / sizeof(parts[0])))];
      text.append(p, p[0] == 0 ? 1 : std::strlen(p));
    }
    for (PreTokenizer kind : kinds) {
      words.clear();
      pre_tokenize(kind, text.data(), text.size(), cps, words);
      uint32_t at = 0;
      for (const auto& w : words) {
        if (w.first != at || w.second <= w.first) bad++;
        at = w.second;
      }
      if (at != text.size()) bad++;
    }
  }
  EXPECT(bad == 0);
}

void test_names() {
  EXPECT(pre_tokenizer_from_name("llama-bpe") == PreTokenizer::Llama3);
  EXPECT(pre_tokenizer_from_name("qwen2") == PreTokenizer::Qwen2);
  EXPECT(pre_tokenizer_from_name("gpt-2") == PreTokenizer::Gpt2);
  EXPECT(pre_tokenizer_from_name("smollm") == PreTokenizer::SmolLM);
  EXPECT_THROWS_CODE(pre_tokenizer_from_name("deepseek-llm"), ErrorCode::Unsupported);
  EXPECT_THROWS_CODE(pre_tokenizer_from_name(""), ErrorCode::Unsupported);
}

}  // namespace

int main() {
  test_against_js_regexes();
  test_classes();
  test_invalid_utf8_keeps_bytes();
  test_random_bytes_covered();
  test_names();
  return test::finish("test_pre_tokenizer");
}
