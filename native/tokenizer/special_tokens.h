// Special tokens in text and at the end of generation. Control and user-defined (added) tokens are
// found in the text before BPE, as llama.cpp's parse_special does: user-defined ones always (byte-level
// vocabularies), control and unknown ones only when the caller asks for special parsing; the text
// between them is encoded normally. The end-of-generation set follows llama.cpp too: eos, eot, eom and
// the control tokens whose text marks the end of a turn.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace chimera {

struct TokenizerData;

// Texts that llama.cpp treats as control tokens whatever the file says, and as end of generation.
bool is_eog_text(const std::string& text);
bool is_fim_text(const std::string& text);  // fill-in-the-middle markers (control; pad/repo/sep also end)
// The end-of-turn token by text when the file names none ("<|eot_id|>", "<|im_end|>", ...), else -1.
int32_t find_eot_by_text(const TokenizerData& d);

class SpecialTokenMatcher {
 public:
  SpecialTokenMatcher() = default;
  explicit SpecialTokenMatcher(const TokenizerData& d);

  struct Fragment {
    size_t begin, end;  // byte span of the text
    int32_t token;      // the special token it is, or -1 for ordinary text
  };
  // Splits text at special tokens: at each position the longest matching token wins. `control`:
  // control and unknown tokens count too (special parsing); user-defined tokens always do.
  void split(const std::string& text, bool control, std::vector<Fragment>& out) const;
  bool empty() const { return tokens_.empty(); }

 private:
  struct Entry {
    std::string text;
    int32_t id;
    bool control;
  };
  std::vector<Entry> tokens_;          // longest first
  std::vector<uint8_t> first_byte_;    // (256) 1 if some token starts with that byte
};

}  // namespace chimera
