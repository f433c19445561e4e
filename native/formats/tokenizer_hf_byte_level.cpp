// Byte-level tokenizer.json pipelines: normalizer, pre-tokenizer and post-processor, recognised
// structurally (the split regexes by their exact text) and mapped to the pre-tokenizers of
// native/tokenizer/pre_tokenizer.h.
#include "formats/tokenizer_hf_byte_level.h"

#include <vector>

#include "common/error.h"

namespace chimera {

namespace {

// The Split regexes of Llama 3 and Qwen2 tokenizer.json files, and llama.cpp's case-folded spelling.
const char* const kLlama3Regexes[] = {
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re",
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re",
};
const char* const kQwen2Regexes[] = {
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re",
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re",
};

std::string type_of(const Json* j) {
  const Json* t = j && j->is_object() ? j->find("type") : nullptr;
  return t && t->is_string() ? std::string(t->string()) : std::string();
}

bool flag(const Json& j, const char* key, bool fallback) {
  const Json* v = j.find(key);
  return v && v->is_bool() ? v->boolean() : fallback;
}

// The steps of a pipeline stage: the members of a Sequence, or the stage itself.
std::vector<const Json*> steps(const Json* stage, const char* list_key) {
  std::vector<const Json*> out;
  if (stage == nullptr || !stage->is_object()) return out;
  const Json* list = stage->find(list_key);
  if (type_of(stage) == "Sequence" && list && list->is_array()) {
    for (const Json& s : list->array()) out.push_back(&s);
  } else {
    out.push_back(stage);
  }
  return out;
}

template <size_t N>
bool one_of(const char* const (&list)[N], std::string_view s) {
  for (const char* r : list) {
    if (s == r) return true;
  }
  return false;
}

// The regex of a Split step that isolates its matches (what the byte-level pipelines use).
std::string split_regex(const Json& s, const std::string& path) {
  const Json* pattern = s.find("pattern");
  const Json* re = pattern && pattern->is_object() ? pattern->find("Regex") : nullptr;
  const Json* behavior = s.find("behavior");
  CHIMERA_CHECK(re && re->is_string() && behavior && behavior->is_string() && behavior->string() == "Isolated" &&
                    !flag(s, "invert", false),
                ErrorCode::Unsupported, path, ": a Split pre-tokenizer step other than an isolating regex is not supported");
  return std::string(re->string());
}

void check_byte_level_step(const Json& s, const std::string& path) {
  CHIMERA_CHECK(!flag(s, "add_prefix_space", false), ErrorCode::Unsupported, path,
                ": a ByteLevel pre-tokenizer with add_prefix_space is not supported");
}

std::string pre_tokenizer_of(const Json& root, const std::string& path) {
  const std::vector<const Json*> st = steps(root.find("pre_tokenizer"), "pretokenizers");
  std::vector<std::string> types;
  for (const Json* s : st) types.push_back(type_of(s));
  // GPT-2: ByteLevel splitting with its own regex.
  if (types.size() == 1 && types[0] == "ByteLevel" && flag(*st[0], "use_regex", true)) {
    check_byte_level_step(*st[0], path);
    return "gpt-2";
  }
  // SmolLM: single digits first, then ByteLevel with the GPT-2 regex.
  if (types.size() == 2 && types[0] == "Digits" && flag(*st[0], "individual_digits", false) &&
      types[1] == "ByteLevel" && flag(*st[1], "use_regex", true)) {
    check_byte_level_step(*st[1], path);
    return "smollm";
  }
  // Llama 3 / Qwen2: a Split regex, then ByteLevel without its own regex.
  if (types.size() == 2 && types[0] == "Split" && types[1] == "ByteLevel" && !flag(*st[1], "use_regex", true)) {
    check_byte_level_step(*st[1], path);
    const std::string re = split_regex(*st[0], path);
    if (one_of(kLlama3Regexes, re)) return "llama-bpe";
    if (one_of(kQwen2Regexes, re)) return "qwen2";
    throw_error(ErrorCode::Unsupported, path, ": the pre-tokenizer regex '", re,
                "' is not one of the supported ones (Llama 3, Qwen2, GPT-2, SmolLM)");
  }
  std::string names;
  for (const std::string& t : types) names += (names.empty() ? "" : ", ") + t;
  throw_error(ErrorCode::Unsupported, path, ": the byte-level pre-tokenizer [", names,
              "] is not supported (supported: Llama 3, Qwen2, GPT-2 and SmolLM pipelines)");
}

// NFC is accepted but not applied (as llama.cpp): text from a JS string is almost always NFC already.
void check_normalizer(const Json& root, const std::string& path) {
  for (const Json* s : steps(root.find("normalizer"), "normalizers")) {
    const std::string t = type_of(s);
    CHIMERA_CHECK(t == "NFC" || t == "Sequence", ErrorCode::Unsupported, path, ": normalizer '", t,
                  "' is not supported for byte-level tokenizers (only none or NFC)");
  }
}

// BOS from a TemplateProcessing post-processor whose single-sequence template starts with a special token.
void read_post_processor(const Json& root, const std::function<int32_t(const std::string&)>& id_of,
                         TokenizerData& d) {
  d.add_bos = false;
  for (const Json* s : steps(root.find("post_processor"), "processors")) {
    if (type_of(s) != "TemplateProcessing") continue;
    const Json* single = s->find("single");
    if (single == nullptr || !single->is_array() || single->array().size() == 0) continue;
    const Json& first = single->array()[0];
    const Json* special = first.is_object() ? first.find("SpecialToken") : nullptr;
    const Json* id = special && special->is_object() ? special->find("id") : nullptr;
    if (id == nullptr || !id->is_string()) continue;
    const int32_t bos = id_of(std::string(id->string()));
    if (bos >= 0) {
      d.bos = bos;
      d.add_bos = true;
    }
  }
}

}  // namespace

bool hf_is_byte_level(const Json& root) {
  for (const char* stage : {"pre_tokenizer", "decoder"}) {
    const char* list = stage[0] == 'p' ? "pretokenizers" : "decoders";
    for (const Json* s : steps(root.find(stage), list)) {
      if (type_of(s) == "ByteLevel") return true;
    }
  }
  return false;
}

void read_hf_byte_level_options(const Json& root, const Json& model, const std::string& path,
                                const std::function<int32_t(const std::string&)>& id_of, TokenizerData& d) {
  check_normalizer(root, path);
  d.pre = pre_tokenizer_of(root, path);
  d.ignore_merges = flag(model, "ignore_merges", false);
  read_post_processor(root, id_of, d);
}

}  // namespace chimera
