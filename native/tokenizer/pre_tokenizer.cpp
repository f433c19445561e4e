// Hand-written matchers for the byte-level pre-tokenizer regexes (see pre_tokenizer.h). Each `match_*`
// returns where the regex's match starting at code point i ends, trying the alternatives in the
// regex's order, as a backtracking regex engine would (leftmost alternative wins, not the longest).
#include "tokenizer/pre_tokenizer.h"

#include "common/error.h"

namespace chimera {

namespace {

// The code points [0, n) of one stretch of text; past the end everything reads as "no character",
// which is what a lookahead at the end of the input sees.
struct Cps {
  const CodePoint* c;
  size_t n;
  uint32_t cp(size_t i) const { return i < n ? c[i].cp : 0xFFFFFFFFu; }
  int cls(size_t i) const { return i < n ? (int)c[i].cls : -1; }
  bool newline(size_t i) const { return cp(i) == '\r' || cp(i) == '\n'; }
};

uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// English contractions after an apostrophe: 's 't 're 've 'm 'll 'd (ASCII only, as llama.cpp).
size_t match_contraction(const Cps& s, size_t i, bool any_case) {
  if (s.cp(i) != '\'') return i;
  const auto fold = [&](size_t k) { return any_case ? ascii_lower(s.cp(k)) : s.cp(k); };
  const uint32_t a = fold(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  const uint32_t b = fold(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  return i;
}

// \s+(?!\S)|\s+ from i (a space): the whole run at the end of the text or when it is one character,
// otherwise all but its last character (which then prefixes the next word).
size_t match_space_run(const Cps& s, size_t i) {
  size_t e = i;
  while (s.cls(e) == kSpace) e++;
  return (e < s.n && e - i > 1) ? e - 1 : e;
}

size_t match_llama3(const Cps& s, size_t i, size_t max_digits) {
  size_t j = match_contraction(s, i, true);
  if (j != i) return j;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  j = i;
  const int c0 = s.cls(i);
  if (c0 != kLetter && c0 != kNumber && !s.newline(i) && s.cls(i + 1) == kLetter) j = i + 1;
  if (s.cls(j) == kLetter) {
    while (s.cls(j) == kLetter) j++;
    return j;
  }
  // \p{N}{1,max_digits}
  if (c0 == kNumber) {
    j = i;
    while (s.cls(j) == kNumber && j - i < max_digits) j++;
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  j = s.cp(i) == ' ' ? i + 1 : i;
  if (s.cls(j) == kOther) {
    while (s.cls(j) == kOther) j++;
    while (s.newline(j)) j++;
    return j;
  }
  // \s*[\r\n]+ : the run up to and including its last newline
  size_t e = i, last_newline = SIZE_MAX;
  for (; s.cls(e) == kSpace; e++) {
    if (s.newline(e)) last_newline = e;
  }
  if (last_newline != SIZE_MAX) return last_newline + 1;
  return match_space_run(s, i);
}

size_t match_gpt2(const Cps& s, size_t i) {
  size_t j = match_contraction(s, i, false);
  if (j != i) return j;
  //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+
  j = s.cp(i) == ' ' ? i + 1 : i;
  const int c = s.cls(j);
  if (c == kLetter || c == kNumber || c == kOther) {
    while (s.cls(j) == c) j++;
    return j;
  }
  return match_space_run(s, i);
}

void split_stretch(PreTokenizer p, const Cps& s, uint32_t end_offset,
                   std::vector<std::pair<uint32_t, uint32_t>>& words) {
  size_t i = 0;
  while (i < s.n) {
    size_t j;
    switch (p) {
      case PreTokenizer::Llama3: j = match_llama3(s, i, 3); break;
      case PreTokenizer::Qwen2: j = match_llama3(s, i, 1); break;
      default: j = match_gpt2(s, i); break;
    }
    if (j <= i) j = i + 1;  // unreachable for these regexes (every character matches); keeps progress
    words.emplace_back(s.c[i].offset, j < s.n ? s.c[j].offset : end_offset);
    i = j;
  }
}

}  // namespace

PreTokenizer pre_tokenizer_from_name(const std::string& name) {
  if (name == "llama-bpe" || name == "llama3" || name == "llama-v3" || name == "falcon3" || name == "pixtral" ||
      name == "dbrx" || name == "smaug-bpe")
    return PreTokenizer::Llama3;
  if (name == "qwen2" || name == "deepseek-r1-qwen" || name == "stablelm2") return PreTokenizer::Qwen2;
  if (name == "gpt-2" || name == "gpt2" || name == "phi-2" || name == "mpt" || name == "olmo" || name == "jais")
    return PreTokenizer::Gpt2;
  if (name == "smollm" || name == "starcoder" || name == "refact" || name == "codeshell" || name == "command-r")
    return PreTokenizer::SmolLM;
  throw_error(ErrorCode::Unsupported, "tokenizer: pre-tokenizer '", name,
                "' is not supported (supported: llama-bpe, qwen2, gpt-2, smollm and their aliases)");
}

const char* pre_tokenizer_name(PreTokenizer p) {
  switch (p) {
    case PreTokenizer::Llama3: return "llama-bpe";
    case PreTokenizer::Qwen2: return "qwen2";
    case PreTokenizer::Gpt2: return "gpt-2";
    case PreTokenizer::SmolLM: return "smollm";
  }
  return "?";
}

void pre_tokenize(PreTokenizer p, const char* text, size_t n, std::vector<CodePoint>& cps,
                  std::vector<std::pair<uint32_t, uint32_t>>& words) {
  CHIMERA_CHECK(n <= UINT32_MAX, ErrorCode::InvalidArg, "tokenizer: text of ", n, " bytes is too long");
  decode_code_points(text, n, cps);
  if (p != PreTokenizer::SmolLM) {
    split_stretch(p, Cps{cps.data(), cps.size()}, (uint32_t)n, words);
    return;
  }
  // SmolLM: each \p{N} alone; the GPT-2 regex runs on each stretch between them, and its lookahead
  // stops at the stretch's end (as a sequence of pre-tokenizers does).
  size_t start = 0;
  for (size_t i = 0; i <= cps.size(); i++) {
    if (i < cps.size() && cps[i].cls != kNumber) continue;
    const uint32_t end = i < cps.size() ? cps[i].offset : (uint32_t)n;
    split_stretch(PreTokenizer::Gpt2, Cps{cps.data() + start, i - start}, end, words);
    if (i < cps.size()) words.emplace_back(cps[i].offset, cps[i].offset + cps[i].len);
    start = i + 1;
  }
}

}  // namespace chimera
