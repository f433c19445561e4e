// The JSON parser (Json::parse) on the fuzzed text, in memory. A document it accepts must survive a round
// trip: written back out canonically (by this harness, so it depends only on the reader API) it parses to
// the same value, kind by kind, number by number and byte by byte. The canonical text is padded with
// spaces to at least the input's length, so a memory cap proportional to the input size (json.h) cannot
// refuse it when the original passed.
#include <cmath>
#include <string>

#include "common/json.h"
#include "fuzz_common.h"

namespace {

using chimera::Json;

void write_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char ch : s) {
    const unsigned char c = (unsigned char)ch;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;  // UTF-8 as parsed
    }
  }
  out += '"';
}

void write_value(std::string& out, const Json& j) {
  switch (j.kind()) {
    case Json::Kind::Null: out += "null"; return;
    case Json::Kind::Bool: out += j.boolean() ? "true" : "false"; return;
    case Json::Kind::Number: {
      const double d = j.number();
      char buf[40];
      if (std::isinf(d)) std::snprintf(buf, sizeof buf, "%s1e999", d < 0 ? "-" : "");  // what overflowed
      else std::snprintf(buf, sizeof buf, "%.17g", d);
      out += buf;
      return;
    }
    case Json::Kind::String: write_string(out, std::string(j.string())); return;
    case Json::Kind::Array: {
      out += '[';
      bool first = true;
      for (const auto& item : j.array()) {
        if (!first) out += ',';
        first = false;
        write_value(out, item);
      }
      out += ']';
      return;
    }
    case Json::Kind::Object: {
      out += '{';
      bool first = true;
      for (const auto& kv : j.object()) {
        if (!first) out += ',';
        first = false;
        write_string(out, std::string(kv.first));
        out += ':';
        write_value(out, kv.second);
      }
      out += '}';
      return;
    }
  }
}

bool same(const Json& a, const Json& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Json::Kind::Null: return true;
    case Json::Kind::Bool: return a.boolean() == b.boolean();
    case Json::Kind::Number: {
      const double x = a.number(), y = b.number();
      return x == y || (std::isnan(x) && std::isnan(y));
    }
    case Json::Kind::String: return std::string(a.string()) == std::string(b.string());
    case Json::Kind::Array: {
      const auto& x = a.array();
      const auto& y = b.array();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); i++)
        if (!same(x[i], y[i])) return false;
      return true;
    }
    case Json::Kind::Object: {
      const auto& x = a.object();
      const auto& y = b.object();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); i++) {
        if (std::string(x[i].first) != std::string(y[i].first)) return false;
        const Json* found = a.find(std::string(x[i].first));
        if (found == nullptr || !same(*found, x[i].second) || !same(x[i].second, y[i].second)) return false;
      }
      return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  return fuzz::run_guarded([&] {
    const auto doc = Json::parse(text, "fuzz input");
    const Json& j = doc;
    std::string canonical;
    write_value(canonical, j);
    if (canonical.size() < text.size()) canonical.append(text.size() - canonical.size(), ' ');
    try {
      const auto again = Json::parse(canonical, "canonical json");
      if (!same(j, again)) {
        std::fprintf(stderr, "fuzz_json: the canonical form parses to another value:\n%s\n", canonical.c_str());
        std::abort();
      }
    } catch (const chimera::Error& e) {
      std::fprintf(stderr, "fuzz_json: an accepted document, written canonically, is refused: %s\n%s\n", e.what(),
                   canonical.c_str());
      std::abort();
    }
  });
}
