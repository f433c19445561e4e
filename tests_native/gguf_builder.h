// Test helper: builds small GGUF files in memory (any version, alignment, metadata and tensor bytes), so
// loader tests can cover dtypes and layouts the shared assets do not have, and corrupt fields at known
// places. Also a reference Q8_0 quantizer (ggml's quantize_row_q8_0_ref).
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/dtype.h"

namespace test {

class GgufBuilder {
 public:
  uint32_t version = 3;
  uint64_t alignment = 32;  // used for layout; write general.alignment yourself when it is not 32

  void kv_string(const std::string& key, const std::string& v) { key_(key, 8); str_(meta_, v); }
  void kv_u32(const std::string& key, uint32_t v) { key_(key, 4); put_(meta_, v, 4); }
  void kv_f32(const std::string& key, float v) { key_(key, 6); put_f32_(meta_, v); }
  void kv_bool(const std::string& key, bool v) { key_(key, 7); put_(meta_, v ? 1 : 0, 1); }
  void kv_strings(const std::string& key, const std::vector<std::string>& v) {
    array_(key, 8, v.size());
    for (const auto& s : v) str_(meta_, s);
  }
  void kv_f32s(const std::string& key, const std::vector<float>& v) {
    array_(key, 6, v.size());
    for (float f : v) put_f32_(meta_, f);
  }
  void kv_i32s(const std::string& key, const std::vector<int32_t>& v) {
    array_(key, 5, v.size());
    for (int32_t x : v) put_(meta_, (uint32_t)x, 4);
  }

  // ne: ggml order (ne[0] = columns). `bytes` is the tensor's raw data.
  void tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, std::vector<uint8_t> bytes) {
    tensors_.push_back({name, std::move(ne), type, std::move(bytes)});
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
    put_(out, version, 4);
    put_(out, tensors_.size(), 8);
    put_(out, n_kv_, 8);
    out.insert(out.end(), meta_.begin(), meta_.end());
    uint64_t offset = 0;
    std::vector<uint64_t> offsets;
    for (const auto& t : tensors_) {
      str_(out, t.name);
      put_(out, t.ne.size(), 4);
      for (uint64_t n : t.ne) put_(out, n, 8);
      put_(out, t.type, 4);
      put_(out, offset, 8);
      offsets.push_back(offset);
      offset = align_(offset + t.bytes.size());
    }
    out.resize(align_(out.size()), 0);
    const size_t data_start = out.size();
    for (size_t i = 0; i < tensors_.size(); i++) {
      out.resize(data_start + offsets[i], 0);
      out.insert(out.end(), tensors_[i].bytes.begin(), tensors_[i].bytes.end());
    }
    return out;
  }

 private:
  struct T {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type;
    std::vector<uint8_t> bytes;
  };
  std::vector<uint8_t> meta_;
  uint64_t n_kv_ = 0;
  std::vector<T> tensors_;

  uint64_t align_(uint64_t x) const { return (x + alignment - 1) / alignment * alignment; }
  static void put_(std::vector<uint8_t>& out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) out.push_back((uint8_t)(v >> (8 * i)));
  }
  static void put_f32_(std::vector<uint8_t>& out, float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    put_(out, bits, 4);
  }
  static void str_(std::vector<uint8_t>& out, const std::string& s) {
    put_(out, s.size(), 8);
    out.insert(out.end(), s.begin(), s.end());
  }
  void key_(const std::string& key, uint32_t type) {
    n_kv_++;
    str_(meta_, key);
    put_(meta_, type, 4);
  }
  void array_(const std::string& key, uint32_t elem_type, uint64_t n) {
    key_(key, 9);
    put_(meta_, elem_type, 4);
    put_(meta_, n, 8);
  }
};

// ggml GGML_TYPE ids used by the tests.
constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ5_0 = 6, kGgmlQ8_0 = 8, kGgmlBF16 = 30;

// Encodes floats as one of the computable ggml types (Q8_0 needs n % 32 == 0).
inline std::vector<uint8_t> encode_floats(uint32_t type, const std::vector<float>& x) {
  std::vector<uint8_t> out;
  const auto put16 = [&](uint16_t h) { out.push_back((uint8_t)h); out.push_back((uint8_t)(h >> 8)); };
  if (type == kGgmlF32) {
    out.resize(x.size() * 4);
    std::memcpy(out.data(), x.data(), out.size());
  } else if (type == kGgmlF16 || type == kGgmlBF16) {
    for (float f : x) put16(type == kGgmlF16 ? chimera::f32_to_fp16(f) : chimera::f32_to_bf16(f));
  } else if (type == kGgmlQ8_0) {
    for (size_t b = 0; b < x.size() / 32; b++) {
      float amax = 0;
      for (int i = 0; i < 32; i++) amax = std::fmax(amax, std::fabs(x[b * 32 + i]));
      const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
      put16(chimera::f32_to_fp16(d));
      for (int i = 0; i < 32; i++) out.push_back((uint8_t)(int8_t)std::round(x[b * 32 + i] * id));
    }
  }
  return out;
}

// The smallest SentencePiece vocabulary the loaders accept: <unk> <s> </s>, the 256 byte tokens, then
// "▁", "a", "b", "▁a", "ab".
inline std::vector<std::string> tiny_sentencepiece_pieces() {
  std::vector<std::string> p = {"<unk>", "<s>", "</s>"};
  char buf[8];
  for (int i = 0; i < 256; i++) {
    std::snprintf(buf, sizeof buf, "<0x%02X>", i);
    p.push_back(buf);
  }
  for (const char* s : {"\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a", "ab"}) p.push_back(s);
  return p;
}

}  // namespace test
