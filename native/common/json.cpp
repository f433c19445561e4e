// Strict RFC 8259 JSON: a recursive-descent parser with a depth limit, UTF-8 validation and \u escapes
// (surrogate pairs joined), plus the typed accessors; the writer is json_writer.cpp. Model side files
// are untrusted input, so the parser accepts nothing that RFC 8259 rejects (no comments, trailing
// commas, NaN or duplicate keys), and its memory is bounded by the input's size (json.h).
#include "common/json.h"

#include <algorithm>
#include <climits>
#include <memory>
#include <clocale>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace chimera {

namespace {

constexpr int kMaxDepth = 512;

const char* kind_name(Json::Kind k) {
  switch (k) {
    case Json::Kind::Null: return "null";
    case Json::Kind::Bool: return "a boolean";
    case Json::Kind::Number: return "a number";
    case Json::Kind::String: return "a string";
    case Json::Kind::Array: return "an array";
    case Json::Kind::Object: return "an object";
  }
  return "?";
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += (char)cp;
  } else if (cp < 0x800) {
    out += (char)(0xC0 | (cp >> 6));
    out += (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += (char)(0xE0 | (cp >> 12));
    out += (char)(0x80 | ((cp >> 6) & 0x3F));
    out += (char)(0x80 | (cp & 0x3F));
  } else {
    out += (char)(0xF0 | (cp >> 18));
    out += (char)(0x80 | ((cp >> 12) & 0x3F));
    out += (char)(0x80 | ((cp >> 6) & 0x3F));
    out += (char)(0x80 | (cp & 0x3F));
  }
}

// strtod follows the C locale's decimal point; a host application may have changed it, so the '.'
// of a JSON number is swapped for whatever the current locale expects.
double locale_safe_strtod(std::string token) {
  const char dp = *std::localeconv()->decimal_point;
  if (dp != '.') std::replace(token.begin(), token.end(), '.', dp);
  return std::strtod(token.c_str(), nullptr);
}

}  // namespace

// Chunked storage for a document's strings and child lists: values never move once placed, so views
// into it stay valid. Counts what it holds so the parser can cap it.
class JsonArena {
 public:
  void* alloc(size_t bytes, size_t align) {
    size_t pad = (align - (size_t)(uintptr_t)cur_ % align) % align;
    if (cur_ == nullptr || pad + bytes > left_) {
      // Blocks start small and double up to kMaxBlock, so a small document takes little and a large
      // one wastes at most one block.
      next_block_ = std::min(kMaxBlock, next_block_ * 2);
      const size_t block = std::max<size_t>(bytes + align, bytes > next_block_ / 4 ? 0 : next_block_);
      blocks_.emplace_back(new char[block]);
      bytes_ += block;
      cur_ = blocks_.back().get();
      left_ = block;
      pad = (align - (size_t)(uintptr_t)cur_ % align) % align;
    }
    char* p = cur_ + pad;
    cur_ += pad + bytes;
    left_ -= pad + bytes;
    return p;
  }
  size_t bytes() const { return bytes_; }

 private:
  static constexpr size_t kMaxBlock = 1 << 20;
  size_t next_block_ = 1 << 11;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* cur_ = nullptr;
  size_t left_ = 0;
  size_t bytes_ = 0;
};

JsonDocument::JsonDocument() : arena_(std::make_unique<JsonArena>()) {}
JsonDocument::JsonDocument(JsonDocument&& o) noexcept : Json(static_cast<const Json&>(o)), arena_(std::move(o.arena_)) {}
JsonDocument& JsonDocument::operator=(JsonDocument&& o) noexcept {
  Json::operator=(static_cast<const Json&>(o));
  arena_ = std::move(o.arena_);
  return *this;
}
JsonDocument::~JsonDocument() = default;
size_t JsonDocument::arena_bytes() const { return arena_ ? arena_->bytes() : 0; }

class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& what, JsonArena& arena)
      : s_(text), what_(what), arena_(arena), budget_(kJsonMemoryRatio * text.size() + kJsonMemorySlack) {}

  void parse_document(Json& root) {
    skip_ws();
    parse_value(root, 0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected content after the end of the document");
  }

 private:
  const std::string& s_;
  const std::string& what_;
  JsonArena& arena_;
  const size_t budget_;
  size_t pos_ = 0;
  // Children of the containers being parsed, moved into the arena when their container closes.
  std::vector<Json> items_;
  std::vector<JsonMember> members_;
  std::string scratch_;  // a string being unescaped

  void check_budget() const {
    const size_t used = arena_.bytes() + items_.capacity() * sizeof(Json) + members_.capacity() * sizeof(JsonMember);
    if (used > budget_)
      fail("the document needs more than " + std::to_string(kJsonMemoryRatio) +
           "x its size in memory (too many small values)");
  }
  template <typename T>
  const T* place(const std::vector<T>& stack, size_t from) {
    const size_t n = stack.size() - from;
    if (n == 0) return nullptr;
    T* out = static_cast<T*>(arena_.alloc(n * sizeof(T), alignof(T)));
    std::uninitialized_copy(stack.begin() + (std::ptrdiff_t)from, stack.end(), out);
    check_budget();
    return out;
  }
  // Grows a stack with the budget checked first, so a crafted array cannot double it past the cap.
  template <typename T>
  void reserve_one(std::vector<T>& stack) {
    if (stack.size() == stack.capacity()) {
      stack.reserve(std::max<size_t>(16, stack.capacity() * 2));
      check_budget();
    }
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw_error(ErrorCode::Format, what_, ": ", problem, " at byte ", pos_);
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }

  void skip_ws() {
    while (!at_end()) {
      const char c = s_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      pos_++;
    }
  }

  void expect_literal(const char* word) {
    for (const char* p = word; *p; p++, pos_++) {
      if (peek() != *p) fail(std::string("invalid literal (expected '") + word + "')");
    }
  }

  void parse_value(Json& out, int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 512 levels");
    switch (peek()) {
      case '{': parse_object(out, depth); return;
      case '[': parse_array(out, depth); return;
      case '"': parse_string_value(out); return;
      case 't': expect_literal("true"); out.kind_ = Json::Kind::Bool; out.b_ = true; return;
      case 'f': expect_literal("false"); out.kind_ = Json::Kind::Bool; out.b_ = false; return;
      case 'n': expect_literal("null"); out.kind_ = Json::Kind::Null; return;
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) { parse_number(out); return; }
        fail(at_end() ? "unexpected end of input" : "unexpected character");
    }
  }

  void parse_array(Json& out, int depth) {
    out.kind_ = Json::Kind::Array;
    pos_++;  // '['
    skip_ws();
    if (peek() == ']') { pos_++; return; }
    const size_t base = items_.size();
    for (;;) {
      skip_ws();
      Json item;
      parse_value(item, depth + 1);
      reserve_one(items_);
      items_.push_back(item);
      skip_ws();
      if (peek() == ',') { pos_++; continue; }
      if (peek() == ']') { pos_++; break; }
      fail("expected ',' or ']' in an array");
    }
    out.size_ = checked_count(items_.size() - base);
    out.items_ = place(items_, base);
    items_.resize(base);
  }

  void parse_object(Json& out, int depth) {
    out.kind_ = Json::Kind::Object;
    pos_++;  // '{'
    skip_ws();
    if (peek() == '}') { pos_++; return; }
    const size_t base = members_.size();
    for (;;) {
      skip_ws();
      if (peek() != '"') fail("expected a string key in an object");
      JsonMember m;
      m.first = parse_string();
      skip_ws();
      if (peek() != ':') fail("expected ':' after an object key");
      pos_++;
      skip_ws();
      parse_value(m.second, depth + 1);
      reserve_one(members_);
      members_.push_back(m);
      skip_ws();
      if (peek() == ',') { pos_++; continue; }
      if (peek() == '}') { pos_++; break; }
      fail("expected ',' or '}' in an object");
    }
    check_unique_keys(base);
    out.size_ = checked_count(members_.size() - base);
    out.members_ = place(members_, base);
    members_.resize(base);
  }

  uint32_t checked_count(size_t n) const {
    if (n > UINT32_MAX) fail("a container has more than 2^32 entries");
    return (uint32_t)n;
  }

  // Duplicate keys would make lookups ambiguous (which tensor offset is real?), so they are an error.
  void check_unique_keys(size_t base) {
    const size_t n = members_.size() - base;
    if (n < 2) return;
    std::vector<std::string_view> keys;
    keys.reserve(n);
    for (size_t i = base; i < members_.size(); i++) keys.push_back(members_[i].first);
    std::sort(keys.begin(), keys.end());
    for (size_t i = 1; i < keys.size(); i++) {
      if (keys[i] == keys[i - 1]) fail("duplicate object key \"" + std::string(keys[i]) + "\"");
    }
  }

  uint32_t parse_hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++, pos_++) {
      const char c = peek();
      v <<= 4;
      if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
      else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
      else fail("invalid \\u escape (need four hex digits)");
    }
    return v;
  }

  // After the 'u' of a \u escape: one code point, joining a surrogate pair.
  uint32_t parse_unicode_escape() {
    const uint32_t hi = parse_hex4();
    if (hi >= 0xDC00 && hi <= 0xDFFF) fail("unpaired low surrogate in a \\u escape");
    if (hi < 0xD800 || hi > 0xDBFF) return hi;
    if (peek() != '\\' || pos_ + 1 >= s_.size() || s_[pos_ + 1] != 'u') fail("unpaired high surrogate in a \\u escape");
    pos_ += 2;
    const uint32_t lo = parse_hex4();
    if (lo < 0xDC00 || lo > 0xDFFF) fail("high surrogate not followed by a low surrogate");
    return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
  }

  void parse_escape(std::string& out) {
    pos_++;  // '\\'
    const char c = peek();
    pos_++;
    switch (c) {
      case '"': out += '"'; return;
      case '\\': out += '\\'; return;
      case '/': out += '/'; return;
      case 'b': out += '\b'; return;
      case 'f': out += '\f'; return;
      case 'n': out += '\n'; return;
      case 'r': out += '\r'; return;
      case 't': out += '\t'; return;
      case 'u': append_utf8(out, parse_unicode_escape()); return;
      default: pos_--; fail("invalid escape sequence");
    }
  }

  // Length of the valid UTF-8 sequence at pos_ (lead byte >= 0x80); rejects overlongs and surrogates.
  size_t utf8_length() const {
    const auto at = [&](size_t i) -> uint8_t { return pos_ + i < s_.size() ? (uint8_t)s_[pos_ + i] : 0; };
    const uint8_t b0 = at(0);
    const auto cont = [&](size_t i, uint8_t lo = 0x80, uint8_t hi = 0xBF) { return at(i) >= lo && at(i) <= hi; };
    if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) return 2;
    if (b0 == 0xE0 && cont(1, 0xA0) && cont(2)) return 3;
    if (((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) && cont(1) && cont(2)) return 3;
    if (b0 == 0xED && cont(1, 0x80, 0x9F) && cont(2)) return 3;
    if (b0 == 0xF0 && cont(1, 0x90) && cont(2) && cont(3)) return 4;
    if (b0 >= 0xF1 && b0 <= 0xF3 && cont(1) && cont(2) && cont(3)) return 4;
    if (b0 == 0xF4 && cont(1, 0x80, 0x8F) && cont(2) && cont(3)) return 4;
    return 0;
  }

  void parse_string_value(Json& out) {
    const std::string_view v = parse_string();
    out.kind_ = Json::Kind::String;
    out.size_ = checked_count(v.size());
    out.str_ = v.data();
  }

  // A string, unescaped and validated, copied into the arena.
  std::string_view parse_string() {
    scratch_.clear();
    parse_string_into(scratch_);
    if (scratch_.empty()) return std::string_view("", 0);
    char* p = static_cast<char*>(arena_.alloc(scratch_.size(), 1));
    std::memcpy(p, scratch_.data(), scratch_.size());
    check_budget();
    return std::string_view(p, scratch_.size());
  }

  void parse_string_into(std::string& out) {
    pos_++;  // opening quote
    for (;;) {
      if (at_end()) fail("unterminated string");
      const uint8_t c = (uint8_t)s_[pos_];
      if (c == '"') { pos_++; return; }
      if (c == '\\') { parse_escape(out); continue; }
      if (c < 0x20) fail("unescaped control character in a string");
      if (c < 0x80) {
        // Copy the run of plain ASCII in one go: tokenizer files are mostly this.
        size_t end = pos_ + 1;
        while (end < s_.size()) {
          const uint8_t d = (uint8_t)s_[end];
          if (d == '"' || d == '\\' || d < 0x20 || d >= 0x80) break;
          end++;
        }
        out.append(s_, pos_, end - pos_);
        pos_ = end;
        continue;
      }
      const size_t n = utf8_length();
      if (n == 0) fail("invalid UTF-8 in a string");
      out.append(s_, pos_, n);
      pos_ += n;
    }
  }

  void scan_digits() {
    if (!(peek() >= '0' && peek() <= '9')) fail("invalid number (expected a digit)");
    while (peek() >= '0' && peek() <= '9') pos_++;
  }

  void parse_number(Json& out) {
    const size_t start = pos_;
    bool integral = true;
    if (peek() == '-') pos_++;
    if (peek() == '0') {
      pos_++;
      if (peek() >= '0' && peek() <= '9') fail("invalid number (leading zero)");
    } else {
      scan_digits();
    }
    if (peek() == '.') { pos_++; scan_digits(); integral = false; }
    if (peek() == 'e' || peek() == 'E') {
      pos_++;
      if (peek() == '+' || peek() == '-') pos_++;
      scan_digits();
      integral = false;
    }
    const size_t len = pos_ - start;
    out.kind_ = Json::Kind::Number;
    if (integral && len <= 16) {  // up to 15 digits (+ sign): exact in an int64 and in a double
      int64_t v = 0;
      size_t i = start + (s_[start] == '-' ? 1 : 0);
      for (; i < pos_; i++) v = v * 10 + (s_[i] - '0');
      out.num_ = (double)(s_[start] == '-' ? -v : v);
      return;
    }
    out.num_ = locale_safe_strtod(s_.substr(start, len));
    if (!std::isfinite(out.num_)) { pos_ = start; fail("number out of range"); }
  }
};

JsonDocument Json::parse(const std::string& text, const std::string& what) {
  JsonDocument doc;
  JsonParser(text, what, *doc.arena_).parse_document(doc);
  return doc;
}

double Json::number(const char* what) const {
  CHIMERA_CHECK(kind_ == Kind::Number, ErrorCode::Format, what, ": expected a number, found ", kind_name(kind_));
  return num_;
}

int64_t Json::integer(const char* what) const {
  const double d = number(what);
  CHIMERA_CHECK(std::floor(d) == d && std::fabs(d) <= 9007199254740992.0, ErrorCode::Format, what,
                ": expected an integer, found ", d);
  return (int64_t)d;
}

bool Json::boolean(const char* what) const {
  CHIMERA_CHECK(kind_ == Kind::Bool, ErrorCode::Format, what, ": expected true or false, found ", kind_name(kind_));
  return b_;
}

std::string_view Json::string(const char* what) const {
  CHIMERA_CHECK(kind_ == Kind::String, ErrorCode::Format, what, ": expected a string, found ", kind_name(kind_));
  return size_ == 0 ? std::string_view() : std::string_view(str_, size_);
}

JsonSpan<Json> Json::array(const char* what) const {
  CHIMERA_CHECK(kind_ == Kind::Array, ErrorCode::Format, what, ": expected an array, found ", kind_name(kind_));
  return JsonSpan<Json>(items_, size_);
}

JsonSpan<JsonMember> Json::object(const char* what) const {
  CHIMERA_CHECK(kind_ == Kind::Object, ErrorCode::Format, what, ": expected an object, found ", kind_name(kind_));
  return JsonSpan<JsonMember>(members_, size_);
}

const Json* Json::find(std::string_view key) const {
  if (kind_ != Kind::Object) return nullptr;
  for (uint32_t i = 0; i < size_; i++) {
    if (members_[i].first == key) return &members_[i].second;
  }
  return nullptr;
}

}  // namespace chimera
