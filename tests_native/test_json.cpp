// ctest: the strict JSON reader/writer, the bounds-checked ByteReader and the safetensors container.
// Valid documents parse to the right values; every malformed one throws E_FORMAT (never crashes).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "check.h"
#include "common/error.h"
#include "common/json.h"
#include "common/mapped_file.h"
#include "formats/safetensors.h"

using namespace chimera;
namespace fs = std::filesystem;

static void test_json_values() {
  const JsonDocument j = Json::parse(
      " {\"a\": [1, -2.5e2, 0.125, 123456789012345678, true, false, null],"
      " \"s\": \"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u2581\\ud83d\\ude00 \xE2\x96\x81\","
      " \"o\": {\"k\": {}}, \"e\": []} ",
      "doc");
  const auto& a = j.find("a")->array();
  EXPECT(a.size() == 7 && a[0].integer() == 1 && a[1].number() == -250.0 && a[2].number() == 0.125);
  EXPECT(a[3].number() == 123456789012345678.0 && a[4].boolean() && !a[5].boolean() && a[6].is_null());
  EXPECT(j.find("s")->string() == "q\"\\/\b\f\n\r\t\xC3\xA9\xE2\x96\x81\xF0\x9F\x98\x80 \xE2\x96\x81");
  EXPECT(j.find("o")->find("k")->is_object() && j.find("e")->array().empty() && j.find("missing") == nullptr);
  EXPECT_THROWS_CODE(j.find("s")->integer("s"), ErrorCode::Format);
  EXPECT_THROWS_CODE(a[2].integer("a[2]"), ErrorCode::Format);
  // Writer round trip, including escapes and control characters.
  JsonValue w = JsonValue::make_object();
  w.set("x", JsonValue::make_number(1.5));
  w.set("n", JsonValue::make_number(-42));
  w.set("s", JsonValue::make_string(std::string("a\"b\\c\n\x01\xE2\x96\x81", 10)));
  w.set("l", JsonValue::make_array({JsonValue::make_bool(true), JsonValue::make_null()}));
  w.set("x", JsonValue::make_number(0.1));  // replaces
  const std::string text = w.dump();
  EXPECT(text == "{\"x\":0.10000000000000001,\"n\":-42,\"s\":\"a\\\"b\\\\c\\n\\u0001\xE2\x96\x81\",\"l\":[true,null]}");
  const JsonDocument back = Json::parse(text, "dump");
  EXPECT(back.find("x")->number() == 0.1 && back.find("s")->string() == std::string("a\"b\\c\n\x01\xE2\x96\x81", 10));
}

static void test_json_rejects() {
  const char* bad[] = {"",        "{",         "[1,]",        "{\"a\":1,}",   "01",        "1.",       "-",
                       ".5",      "1e",        "NaN",         "[Infinity]",   "tru",       "nul",      "\"abc",
                       "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"",  "\"\\ud800\\u0041\"", "\"a\nb\"",
                       "\"\xC0\xAF\"", "\"\xED\xA0\x80\"", "\"\xF4\x90\x80\x80\"", "\"\xE2\x96\"", "{\"a\":1,\"a\":2}",
                       "[1] 2",   "{1:2}",     "[1 2]",       "1e999",        "// c\n1",   "'a'"};
  for (const char* s : bad) {
    try {
      Json::parse(s, "doc");
      std::fprintf(stderr, "accepted invalid JSON: %s\n", s);
      test::failures()++;
    } catch (const Error& e) {
      EXPECT(e.code() == ErrorCode::Format && std::string(e.what()).find("doc: ") == 0 &&
             std::string(e.what()).find(" at byte ") != std::string::npos);
    }
  }
  // Depth: 512 nested arrays parse, 600 do not.
  EXPECT(Json::parse(std::string(512, '[') + std::string(512, ']'), "deep").is_array());
  EXPECT_THROWS_CODE(Json::parse(std::string(600, '[') + std::string(600, ']'), "deep"), ErrorCode::Format);
  EXPECT_THROWS_CODE(Json::parse(std::string(100000, '['), "deep"), ErrorCode::Format);
}

// A document's memory is a small multiple of its text: realistic tokenizer files fit well under the
// cap, and a crafted file of tiny values is refused instead of taking 8x its size.
static void test_json_memory_bound() {
  std::string text = "{\n  \"model\": {\n    \"vocab\": {\n";
  for (int i = 0; i < 50000; i++)
    text += "      \"\xC4\xA0tok" + std::to_string(i) + "\": " + std::to_string(i) + (i + 1 < 50000 ? ",\n" : "\n");
  text += "    },\n    \"merges\": [\n";
  for (int i = 0; i < 50000; i++)
    text += "      [\n        \"\xC4\xA0t\",\n        \"ok" + std::to_string(i) + "\"\n      ]" + (i + 1 < 50000 ? ",\n" : "\n");
  text += "    ]\n  }\n}\n";
  const JsonDocument doc = Json::parse(text, "tokenizer.json");
  EXPECT(doc.find("model")->find("vocab")->object().size() == 50000);
  EXPECT(doc.find("model")->find("merges")->array()[49999].array()[1].string() == "ok49999");
  std::fprintf(stderr, "tokenizer-shaped JSON: %zu bytes of text, %zu bytes of arena (%.2fx)\n", text.size(),
               doc.arena_bytes(), (double)doc.arena_bytes() / (double)text.size());
  EXPECT(doc.arena_bytes() <= 2 * text.size());
  std::string zeros = "[";
  for (int i = 0; i < 1000000; i++) zeros += i ? ",0" : "0";
  zeros += "]";
  try {
    Json::parse(zeros, "zeros.json");
    EXPECT(false);
  } catch (const Error& e) {
    EXPECT(e.code() == ErrorCode::Format && std::string(e.what()).find("in memory") != std::string::npos);
  }
  // The same values with room around them parse.
  std::string spaced = "[";
  for (int i = 0; i < 10000; i++) spaced += i ? ",               0" : "0";
  spaced += "]";
  EXPECT(Json::parse(spaced, "spaced.json").array().size() == 10000);
}

static void test_byte_reader() {
  const uint8_t data[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  ByteReader r(data, sizeof data, "blob");
  EXPECT(r.u8() == 1 && r.u16() == 0x0302 && r.u32() == 0x07060504u && r.remaining() == 2);
  try {
    r.u32();
    EXPECT(false);
  } catch (const Error& e) {
    EXPECT(e.code() == ErrorCode::Format &&
           std::string(e.what()) == "blob: truncated at offset 7 (need 4 bytes, 2 left)");
  }
  EXPECT(r.pos() == 7);  // a failed read consumes nothing
  EXPECT_THROWS_CODE(r.seek(10), ErrorCode::Format);
  r.seek(0);
  EXPECT(r.u64() == 0x0807060504030201ull);
}

static void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), (std::streamsize)bytes.size());
}

// header JSON padded with spaces to a multiple of 8, then the data area.
static std::string safetensors_bytes(const std::string& header, const std::string& data, uint64_t claimed_len = 0) {
  std::string h = header;
  while (h.size() % 8) h += ' ';
  const uint64_t n = claimed_len ? claimed_len : h.size();
  std::string out;
  for (int i = 0; i < 8; i++) out += (char)(n >> (8 * i));
  return out + h + data;
}

static void test_safetensors(const fs::path& dir) {
  const std::string path = (dir / "t.safetensors").string();
  std::string data(16, '\0');
  const float vals[2] = {1.5f, -2.0f};
  std::memcpy(&data[8], vals, 8);
  const std::string good =
      "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
      "\"c\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}";
  write_file(path, safetensors_bytes(good, data));
  {
    SafetensorsFile f(path);
    const RawTensor* a = f.tensor("a");
    EXPECT(f.tensors().size() == 3 && a && a->supported && a->dtype == DType::F32 && a->shape.size() == 1);
    float got[2];
    std::memcpy(got, a->data, 8);
    EXPECT(got[0] == 1.5f && got[1] == -2.0f && a->bytes == 8);
    EXPECT(f.tensor("b")->shape == std::vector<int64_t>({2, 2}) && !f.tensor("c")->supported);
    EXPECT(f.tensor("__metadata__") == nullptr);
  }
  const std::string entry = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":";
  const std::pair<std::string, std::string> bad[] = {
      {"end past data", entry + "[8,24]}}"},          {"begin > end", entry + "[16,8]}}"},
      {"size mismatch", entry + "[0,12]}}"},          {"negative", entry + "[-8,0]}}"},
      {"one offset", entry + "[0]}}"},                {"bad JSON", entry + "[0,8]}"},
      {"no dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}"},
      {"huge shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}"},
      {"not an object", "[1,2]"}};
  for (const auto& b : bad) {
    write_file(path, safetensors_bytes(b.second, data));
    try {
      SafetensorsFile f(path);
      std::fprintf(stderr, "safetensors accepted: %s\n", b.first.c_str());
      test::failures()++;
    } catch (const Error& e) {
      EXPECT(e.code() == ErrorCode::Format);
    }
  }
  write_file(path, safetensors_bytes("{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}", data));
  EXPECT_THROWS_CODE(SafetensorsFile{path}, ErrorCode::Unsupported);
  write_file(path, safetensors_bytes(good, data, 1ull << 40));
  EXPECT_THROWS_CODE(SafetensorsFile{path}, ErrorCode::Format);
  write_file(path, safetensors_bytes(good, data, 1000));
  EXPECT_THROWS_CODE(SafetensorsFile{path}, ErrorCode::Format);
  write_file(path, std::string("\x05\0\0", 3));
  EXPECT_THROWS_CODE(SafetensorsFile{path}, ErrorCode::Format);
  EXPECT_THROWS_CODE(SafetensorsFile{(dir / "missing.safetensors").string()}, ErrorCode::NotFound);
  EXPECT_THROWS_CODE(read_text_file((dir / "missing.json").string()), ErrorCode::NotFound);
}

int main() {
  const fs::path dir = fs::temp_directory_path() / ("chimera_test_json_" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  test_json_values();
  test_json_rejects();
  test_json_memory_bound();
  test_byte_reader();
  test_safetensors(dir);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return test::finish("test_json");
}
