// Reads a Hugging Face tokenizer.json of model.type "BPE" into TokenizerData: the SentencePiece kind
// LLaMA 1/2 uses (byte fallback and "▁" for spaces), or byte-level GPT-2-style BPE (Llama 3, Qwen2/3,
// SmolLM; its pipeline is read in tokenizer_hf_byte_level.cpp).
#include <algorithm>
#include <unordered_map>

#include "formats/tokenizer_hf_byte_level.h"
#include "common/error.h"
#include "common/json.h"
#include "common/mapped_file.h"
#include "model/model.h"
#include "tokenizer/piece_text.h"

namespace chimera {

namespace {

constexpr int64_t kMaxVocab = 1 << 24;

bool has_type(const Json* j, const char* type) {
  const Json* t = j ? j->find("type") : nullptr;
  return t && t->is_string() && t->string() == type;
}

// Calls f on `j` and, for a "Sequence", on each member listed under `list_key`.
template <typename F>
bool any_step(const Json* j, const char* list_key, F f) {
  if (j == nullptr || !j->is_object()) return false;
  if (f(*j)) return true;
  const Json* list = j->find(list_key);
  if (list == nullptr || !list->is_array()) return false;
  for (const Json& item : list->array()) {
    if (item.is_object() && f(item)) return true;
  }
  return false;
}

// The SentencePiece dummy prefix: a normalizer that prepends "▁", or a Metaspace pre-tokenizer that adds it.
bool uses_space_prefix(const Json& root) {
  const auto prepend = [](const Json& s) {
    const Json* p = s.find("prepend");
    return has_type(&s, "Prepend") && p && p->is_string() && p->string() == "\xE2\x96\x81";
  };
  const auto metaspace = [](const Json& s) {
    if (!has_type(&s, "Metaspace")) return false;
    const Json* scheme = s.find("prepend_scheme");
    if (scheme && scheme->is_string()) return scheme->string() == "first" || scheme->string() == "always";
    const Json* legacy = s.find("add_prefix_space");
    return legacy == nullptr || (legacy->is_bool() && legacy->boolean());
  };
  return any_step(root.find("normalizer"), "normalizers", prepend) ||
         any_step(root.find("pre_tokenizer"), "pretokenizers", metaspace);
}

struct Entry {
  int64_t id;
  std::string_view text;
  const Json* added;  // non-null for added_tokens entries
};

// vocab + added_tokens -> dense id table of raw piece texts. Ids must be exactly 0..n-1; an added token
// may repeat a vocab entry (same id, same text).
std::vector<std::string_view> dense_pieces(const std::vector<Entry>& entries, const std::string& path,
                                      std::vector<const Json*>& added_of) {
  int64_t max_id = -1;
  for (const Entry& e : entries) {
    CHIMERA_CHECK(e.id >= 0 && e.id < kMaxVocab, ErrorCode::Format, path, ": token id ", e.id, " is out of range");
    max_id = std::max(max_id, e.id);
  }
  // More ids than entries means gaps; checking first keeps the allocation bounded by the file.
  CHIMERA_CHECK(max_id + 1 <= (int64_t)entries.size(), ErrorCode::Format, path, ": token ids go up to ", max_id,
                " but vocab and added_tokens have only ", entries.size(), " entries; ids must be contiguous from 0");
  std::vector<std::string_view> raw((size_t)(max_id + 1));  // views into the parsed document
  std::vector<bool> filled(raw.size(), false);
  added_of.assign(raw.size(), nullptr);
  for (const Entry& e : entries) {
    const size_t i = (size_t)e.id;
    if (filled[i]) {
      CHIMERA_CHECK(e.added != nullptr && raw[i] == e.text, ErrorCode::Format, path, ": token id ", e.id,
                    " is given to both '", raw[i], "' and '", e.text, "'");
    }
    raw[i] = e.text;
    filled[i] = true;
    if (e.added) added_of[i] = e.added;
  }
  for (size_t i = 0; i < raw.size(); i++) {
    CHIMERA_CHECK(filled[i], ErrorCode::Format, path, ": token id ", i, " has no piece; ids must be contiguous from 0");
  }
  return raw;
}

std::pair<std::string, std::string> split_merge(const Json& m, const std::string& path) {
  if (m.is_array()) {
    const auto& a = m.array();
    CHIMERA_CHECK(a.size() == 2, ErrorCode::Format, path, ": a merge must be a pair of pieces");
    return {std::string(a[0].string("merge piece")), std::string(a[1].string("merge piece"))};
  }
  const std::string_view s = m.string("merge");
  const size_t sp = s.find(' ');
  CHIMERA_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, ErrorCode::Format, path,
                ": merge '", s, "' must be two pieces separated by one space");
  return {std::string(s.substr(0, sp)), std::string(s.substr(sp + 1))};
}

// Merge ranks: data.merges in file order, and each merged piece scored -rank of its first merge.
// SentencePiece pieces get their spaces back; byte-level ones stay in the byte alphabet.
void read_merges(const Json& model, const std::unordered_map<std::string_view, int32_t>& ids, TokenizerData& d,
                 const std::string& path, bool byte_level) {
  const Json* merges = model.find("merges");
  if (merges == nullptr) return;
  std::vector<bool> scored(d.pieces.size(), false);
  const auto& list = merges->array("tokenizer.json model.merges");
  d.merges.reserve(list.size());
  for (size_t rank = 0; rank < list.size(); rank++) {
    const auto pair = split_merge(list[rank], path);
    const std::string joined = pair.first + pair.second;
    const auto l = ids.find(pair.first), r = ids.find(pair.second), lr = ids.find(joined);
    CHIMERA_CHECK(l != ids.end() && r != ids.end() && lr != ids.end(), ErrorCode::Format, path, ": merge '",
                  pair.first, " ", pair.second, "' uses or makes a piece that is not in the vocabulary");
    if (byte_level) d.merges.emplace_back(pair.first, pair.second);
    else d.merges.emplace_back(sentencepiece_to_text(pair.first), sentencepiece_to_text(pair.second));
    if (!scored[(size_t)lr->second]) {
      d.scores[(size_t)lr->second] = -(float)rank;
      scored[(size_t)lr->second] = true;
    }
  }
}

bool looks_special(std::string_view t) {
  const auto wraps = [&](std::string_view open, std::string_view close) {
    return t.size() >= open.size() + close.size() && t.substr(0, open.size()) == open &&
           t.substr(t.size() - close.size()) == close;
  };
  return wraps("<|", "|>") || wraps("<\xEF\xBD\x9C", "\xEF\xBD\x9C>");  // also fullwidth "<｜...｜>"
}

int32_t id_of(const std::unordered_map<std::string_view, int32_t>& ids, const std::string& piece) {
  const auto it = ids.find(piece);
  return it == ids.end() ? -1 : it->second;
}

// Piece texts and token types: byte-fallback, unknown, and added tokens as control (special) or
// user-defined pieces.
void fill_pieces(const Json& model, const std::vector<std::string_view>& raw, const std::vector<const Json*>& added_of,
                 const std::string& unk_piece, bool byte_level, TokenizerData& d) {
  const Json* fallback = model.find("byte_fallback");
  const bool byte_fallback = fallback && fallback->is_bool() && fallback->boolean();
  for (size_t i = 0; i < raw.size(); i++) {
    d.pieces.push_back(byte_level ? std::string(raw[i]) : sentencepiece_to_text(std::string(raw[i])));
    TokenType t = TokenType::Normal;
    if (byte_fallback && is_byte_piece(std::string(raw[i]))) t = TokenType::Byte;
    if (!unk_piece.empty() && raw[i] == unk_piece) t = TokenType::Unknown;
    if (const Json* a = added_of[i]) {
      const Json* special = a->find("special");
      const bool marked = special && special->is_bool() && special->boolean();
      // As llama.cpp's converter: "<|...|>" added tokens are control tokens even when not marked special.
      if (t != TokenType::Unknown) t = marked || (byte_level && looks_special(raw[i])) ? TokenType::Control
                                                                                     : TokenType::UserDefined;
    }
    d.types.push_back(t);
  }
}

}  // namespace

TokenizerData read_hf_tokenizer_json(const std::string& path) {
  const JsonDocument root = Json::parse(read_text_file(path), path);
  const Json* model = root.find("model");
  CHIMERA_CHECK(model != nullptr && model->is_object(), ErrorCode::Format, path, ": no \"model\" object");
  const Json* type = model->find("type");
  const std::string type_name = type && type->is_string() ? std::string(type->string()) : "?";
  CHIMERA_CHECK(type_name == "BPE", ErrorCode::Unsupported, path, ": tokenizer model type ", type_name,
                " is not supported (only BPE)");
  const bool byte_level = hf_is_byte_level(root);
  const Json* vocab = model->find("vocab");
  CHIMERA_CHECK(vocab != nullptr, ErrorCode::Format, path, ": model.vocab is missing");
  std::vector<Entry> entries;
  for (const auto& kv : vocab->object("tokenizer.json model.vocab")) {
    entries.push_back({kv.second.integer("tokenizer.json vocab id"), kv.first, nullptr});
  }
  if (const Json* added = root.find("added_tokens")) {
    for (const Json& a : added->array("tokenizer.json added_tokens")) {
      const Json* id = a.find("id");
      const Json* content = a.find("content");
      CHIMERA_CHECK(id && content, ErrorCode::Format, path, ": an added token lacks id or content");
      entries.push_back({id->integer("added token id"), content->string("added token content"), &a});
    }
  }
  std::vector<const Json*> added_of;
  const std::vector<std::string_view> raw = dense_pieces(entries, path, added_of);
  entries = std::vector<Entry>();  // freed before the piece tables are built
  std::unordered_map<std::string_view, int32_t> ids;
  ids.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); i++) ids.emplace(raw[i], (int32_t)i);

  TokenizerData d;
  const Json* unk = model->find("unk_token");
  // Byte-level vocabularies cover every byte and rarely name an unknown token; "<unk>" is SentencePiece's.
  const std::string unk_piece = unk && unk->is_string() ? std::string(unk->string()) : byte_level ? "" : "<unk>";
  fill_pieces(*model, raw, added_of, unk_piece, byte_level, d);
  d.scores.assign(raw.size(), 0.0f);
  read_merges(*model, ids, d, path, byte_level);
  d.unk = unk_piece.empty() ? -1 : id_of(ids, unk_piece);
  if (byte_level) {
    d.model = "gpt2";
    d.add_space_prefix = false;
    d.eot = -1;
    read_hf_byte_level_options(root, *model, path, [&](const std::string& p) { return id_of(ids, p); }, d);
    return d;  // eos comes from tokenizer_config.json (loader_hf.cpp)
  }
  d.bos = id_of(ids, "<s>");
  d.eos = id_of(ids, "</s>");
  d.add_bos = true;
  d.add_space_prefix = uses_space_prefix(root);
  d.model = "llama";
  return d;
}

}  // namespace chimera
