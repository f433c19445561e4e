// The GGUF container (v2, v3): header, metadata key/values and tensor infos, fully bounds-checked at
// open time. Arrays are validated but decoded lazily, so a 256k-entry token list costs nothing until
// the tokenizer asks for it. Model semantics (llama.* keys, tensor roles) live in loader_gguf.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/mapped_file.h"
#include "model/weight_import.h"

namespace chimera {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
  String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};

const char* gguf_type_name(GgufType t);

struct GgufKV {
  std::string key;
  GgufType type = GgufType::U8;
  // Scalars: integers in `i` (and `u` for U64 above INT64_MAX), floats in `f`, bool in `b`.
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  bool b = false;
  std::string str;
  // Arrays: element type, element count and the file offset of the first element.
  GgufType elem_type = GgufType::U8;
  uint64_t count = 0;
  size_t offset = 0;
};

class GgufFile {
 public:
  // Maps and parses the file; throws E_FORMAT / E_UNSUPPORTED / E_NOT_FOUND.
  explicit GgufFile(const std::string& path);

  const std::shared_ptr<MappedFile>& file() const { return file_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::vector<GgufKV>& kvs() const { return kvs_; }
  const std::vector<RawTensor>& tensors() const { return tensors_; }

  const GgufKV* find(const std::string& key) const;
  const RawTensor* tensor(const std::string& name) const;

  // Typed metadata getters; `found` is false when the key is absent. A key of the wrong type throws E_FORMAT.
  bool get_int(const std::string& key, int64_t* out) const;     // any integer type, range-checked to int64
  bool get_float(const std::string& key, double* out) const;    // F32 or F64
  bool get_bool(const std::string& key, bool* out) const;
  bool get_string(const std::string& key, std::string* out) const;

  // Array decoders; throw E_FORMAT when the element type does not fit.
  std::vector<std::string> string_array(const GgufKV& kv) const;
  std::vector<float> float_array(const GgufKV& kv) const;      // F32 or F64 elements
  std::vector<int64_t> int_array(const GgufKV& kv) const;      // any integer elements

 private:
  void parse_header(ByteReader& r);
  void parse_kv(ByteReader& r, GgufKV& kv);
  void skip_array(ByteReader& r, GgufType elem, uint64_t count, int depth);
  void parse_tensor_info(ByteReader& r, RawTensor& t, uint32_t* type, uint64_t* offset);
  void place_tensors(ByteReader& r, const std::vector<uint32_t>& types, const std::vector<uint64_t>& offsets);
  std::string read_string(ByteReader& r, const char* what) const;
  void read_scalar(ByteReader& r, GgufType type, GgufKV& kv) const;

  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t n_tensors_ = 0, n_kv_ = 0;
  std::vector<GgufKV> kvs_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<RawTensor> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace chimera
