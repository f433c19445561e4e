// SentencePiece piece-text conventions shared by the tokenizer readers (GGUF, llama2.c, tokenizer.json):
// U+2581 "▁" stands for a space, and "<0xNN>" pieces are byte-fallback tokens.
#pragma once
#include <string>

namespace chimera {

// Replaces every U+2581 (UTF-8 E2 96 81) with an ASCII space, as TokenizerData expects.
inline std::string sentencepiece_to_text(const std::string& piece) {
  std::string out;
  out.reserve(piece.size());
  for (size_t i = 0; i < piece.size(); i++) {
    if (i + 2 < piece.size() && (unsigned char)piece[i] == 0xE2 && (unsigned char)piece[i + 1] == 0x96 &&
        (unsigned char)piece[i + 2] == 0x81) {
      out += ' ';
      i += 2;
    } else {
      out += piece[i];
    }
  }
  return out;
}

// True for "<0xNN>" with two hex digits (either case).
inline bool is_byte_piece(const std::string& p) {
  const auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
  return p.size() == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && hex(p[3]) && hex(p[4]) && p[5] == '>';
}

}  // namespace chimera
