// A small strict JSON reader (RFC 8259) for config.json, tokenizer.json and safetensors headers,
// plus a writer for the metadata we emit. Depth- and size-limited; malformed input throws E_FORMAT.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace chimera {

class Json {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Json() = default;
  static Json parse(const std::string& text, const std::string& what);

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
  const std::string& string(const char* what = "value") const;
  const std::vector<Json>& array(const char* what = "value") const;
  const std::vector<std::pair<std::string, Json>>& object(const char* what = "value") const;

  // Object lookup: nullptr when absent (or when this is not an object).
  const Json* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }

  // Builders for writing.
  static Json make_null() { return Json(); }
  static Json make_bool(bool b);
  static Json make_number(double d);
  static Json make_string(std::string s);
  static Json make_array(std::vector<Json> items = {});
  static Json make_object();
  void set(const std::string& key, Json value);  // object: insert or replace
  void push(Json value);                         // array: append
  std::string dump() const;

 private:
  Kind kind_ = Kind::Null;
  bool b_ = false;
  double num_ = 0;
  std::string str_;
  std::vector<Json> arr_;
  std::vector<std::pair<std::string, Json>> obj_;  // keeps file order
  friend class JsonParser;
};

}  // namespace chimera
