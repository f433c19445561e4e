// The JSON writer half of json.h: value builders and a compact dump() (UTF-8 passed through, control
// characters escaped, numbers written so that they parse back to the same double).
#include <algorithm>
#include <clocale>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/error.h"
#include "common/json.h"

namespace chimera {

JsonValue JsonValue::make_bool(bool b) {
  JsonValue j;
  j.kind_ = Kind::Bool;
  j.b_ = b;
  return j;
}

JsonValue JsonValue::make_number(double d) {
  JsonValue j;
  j.kind_ = Kind::Number;
  j.num_ = d;
  return j;
}

JsonValue JsonValue::make_string(std::string s) {
  JsonValue j;
  j.kind_ = Kind::String;
  j.str_ = std::move(s);
  return j;
}

JsonValue JsonValue::make_array(std::vector<JsonValue> items) {
  JsonValue j;
  j.kind_ = Kind::Array;
  j.arr_ = std::move(items);
  return j;
}

JsonValue JsonValue::make_object() {
  JsonValue j;
  j.kind_ = Kind::Object;
  return j;
}

void JsonValue::set(const std::string& key, JsonValue value) {
  CHIMERA_CHECK(kind_ == Kind::Object, ErrorCode::Internal, "JsonValue::set needs an object (use make_object)");
  for (auto& kv : obj_) {
    if (kv.first == key) { kv.second = std::move(value); return; }
  }
  obj_.emplace_back(key, std::move(value));
}

void JsonValue::push(JsonValue value) {
  CHIMERA_CHECK(kind_ == Kind::Array, ErrorCode::Internal, "JsonValue::push needs an array (use make_array)");
  arr_.push_back(std::move(value));
}

namespace {

void dump_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const uint8_t c = (uint8_t)ch;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;  // UTF-8 passes through unchanged
        }
    }
  }
  out += '"';
}

void dump_number(std::string& out, double d) {
  if (!std::isfinite(d)) { out += "null"; return; }  // JSON has no NaN or Infinity
  char buf[32];
  if (std::floor(d) == d && std::fabs(d) < 1e15) {
    std::snprintf(buf, sizeof buf, "%lld", (long long)d);
  } else {
    std::snprintf(buf, sizeof buf, "%.17g", d);
    const char dp = *std::localeconv()->decimal_point;
    if (dp != '.') std::replace(buf, buf + std::strlen(buf), dp, '.');
  }
  out += buf;
}

}  // namespace

// Recursion depth is bounded by how the value was built.
void dump_value(std::string& out, const JsonValue& j) {
  switch (j.kind_) {
    case Json::Kind::Null: out += "null"; return;
    case Json::Kind::Bool: out += j.b_ ? "true" : "false"; return;
    case Json::Kind::Number: dump_number(out, j.num_); return;
    case Json::Kind::String: dump_string(out, j.str_); return;
    case Json::Kind::Array: {
      out += '[';
      bool first = true;
      for (const JsonValue& item : j.arr_) {
        if (!first) out += ',';
        first = false;
        dump_value(out, item);
      }
      out += ']';
      return;
    }
    case Json::Kind::Object: {
      out += '{';
      bool first = true;
      for (const auto& kv : j.obj_) {
        if (!first) out += ',';
        first = false;
        dump_string(out, kv.first);
        out += ':';
        dump_value(out, kv.second);
      }
      out += '}';
      return;
    }
  }
}

std::string JsonValue::dump() const {
  std::string out;
  dump_value(out, *this);
  return out;
}

}  // namespace chimera
