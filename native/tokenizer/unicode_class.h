// Code point classes for the byte-level pre-tokenizers (\p{L}, \p{N}, White_Space, other) and a
// lenient UTF-8 reader: the regexes of GPT-2-style tokenizers are written over these classes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace chimera {

enum CpClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };

// Class of one code point (binary search in the generated table; ASCII from a small array).
CpClass cp_class(uint32_t cp);

// One decoded character of a UTF-8 string: its code point, class and byte span. An invalid byte
// becomes a one-byte character of class kOther (cp 0xFFFD), so splitting never loses input bytes.
struct CodePoint {
  uint32_t cp;
  uint32_t offset;  // byte offset in the text
  uint8_t len;      // bytes
  CpClass cls;
};

void decode_code_points(const char* text, size_t n, std::vector<CodePoint>& out);

}  // namespace chimera
