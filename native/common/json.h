// A small strict JSON reader (RFC 8259) for config.json, tokenizer.json and safetensors headers,
// plus a writer for the metadata we emit. Depth- and memory-limited; malformed input throws E_FORMAT.
//
// Parsed documents are compact: a value is 16 bytes, an object member 32, and strings and child lists
// live in one arena owned by the JsonDocument (a pretty-printed tokenizer.json takes about 2x its size, a
// minified one with ~400k short vocab/merge entries, as Llama 3's, about 3.5x). The
// arena is capped at kJsonMemoryRatio times the input, so no input, however crafted (a file of "[0,0,..."
// needs 8 bytes per input byte), makes the parser allocate more than a small multiple of its size.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chimera {

// The parser's memory (arena plus the pending-children stack) stays under this multiple of the input
// size, plus kJsonMemorySlack; over it, parse throws E_FORMAT. Minified vocabularies need ~3.5x; a
// crafted run of tiny values needs 8x and is refused.
constexpr size_t kJsonMemoryRatio = 5;
constexpr size_t kJsonMemorySlack = 1 << 16;

class Json;
class JsonDocument;
struct JsonMember;

// A read-only view of a parsed array or object's children.
template <typename T>
class JsonSpan {
 public:
  JsonSpan() = default;
  JsonSpan(const T* data, size_t size) : data_(data), size_(size) {}
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  const T* data_ = nullptr;
  size_t size_ = 0;
};

// One value of a parsed document. Values live in their document's arena: use them by reference
// while the JsonDocument lives.
class Json {
 public:
  enum class Kind : uint8_t { Null, Bool, Number, String, Array, Object };

  Json() = default;
  Json(const Json&) = default;  // a view: copies point into the same document
  Json& operator=(const Json&) = default;
  // Slicing a document would free the arena its root points into: keep the JsonDocument instead.
  Json(const JsonDocument&) = delete;
  Json& operator=(const JsonDocument&) = delete;
  static JsonDocument parse(const std::string& text, const std::string& what);

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_object() const { return kind_ == Kind::Object; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_number() const { return kind_ == Kind::Number; }
  bool is_bool() const { return kind_ == Kind::Bool; }

  // Typed accessors throw E_FORMAT naming `what` when the kind is wrong.
  double number(const char* what = "value") const;
  int64_t integer(const char* what = "value") const;  // must be integral
  bool boolean(const char* what = "value") const;
  std::string_view string(const char* what = "value") const;
  JsonSpan<Json> array(const char* what = "value") const;
  JsonSpan<JsonMember> object(const char* what = "value") const;  // in file order

  // Object lookup: nullptr when absent (or when this is not an object).
  const Json* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

 private:
  Kind kind_ = Kind::Null;
  bool b_ = false;
  uint32_t size_ = 0;  // string bytes or children
  union {
    double num_ = 0;
    const char* str_;
    const Json* items_;
    const JsonMember* members_;
  };
  friend class JsonParser;
};

struct JsonMember {
  std::string_view first;  // the key
  Json second;             // the value
};

class JsonArena;

// A parsed document: the root value plus the arena its values live in. Move-only.
class JsonDocument : public Json {
 public:
  JsonDocument();
  JsonDocument(JsonDocument&&) noexcept;
  JsonDocument& operator=(JsonDocument&&) noexcept;
  ~JsonDocument();
  // Bytes of the arena (strings and child lists), for tests and limits.
  size_t arena_bytes() const;

 private:
  std::unique_ptr<JsonArena> arena_;
  friend class Json;
};

// A JSON value built in memory, for writing (metadata we emit): owns its strings and children.
class JsonValue {
 public:
  using Kind = Json::Kind;
  JsonValue() = default;
  static JsonValue make_null() { return JsonValue(); }
  static JsonValue make_bool(bool b);
  static JsonValue make_number(double d);
  static JsonValue make_string(std::string s);
  static JsonValue make_array(std::vector<JsonValue> items = {});
  static JsonValue make_object();
  void set(const std::string& key, JsonValue value);  // object: insert or replace
  void push(JsonValue value);                         // array: append
  size_t size() const { return kind_ == Json::Kind::Array ? arr_.size() : obj_.size(); }  // children
  std::string dump() const;

 private:
  Json::Kind kind_ = Json::Kind::Null;
  bool b_ = false;
  double num_ = 0;
  std::string str_;
  std::vector<JsonValue> arr_;
  std::vector<std::pair<std::string, JsonValue>> obj_;  // keeps insertion order
  friend void dump_value(std::string& out, const JsonValue& j);
};

}  // namespace chimera
