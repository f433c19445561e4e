// GGUF container parsing. Every count is checked against the bytes left before anything is allocated
// or skipped, every tensor's extent against the file, so a hostile file can only produce an E_FORMAT.
#include "formats/gguf_file.h"

#include <algorithm>

#include "common/checked_math.h"
#include "common/error.h"

namespace chimera {

namespace {

// Counts beyond these are not models but attacks or corruption (large models have ~50 keys, ~3k tensors).
constexpr uint64_t kMaxKVs = 1 << 20;
constexpr uint64_t kMaxTensors = 1 << 20;
constexpr uint64_t kMaxKeyLength = 65535;
constexpr uint64_t kMaxArrayElements = 1 << 26;
constexpr int kMaxArrayDepth = 8;
constexpr int kMaxDims = 4;

// ggml element types: block size in elements and bytes per block (ggml.c type_traits).
struct GgmlType {
  uint32_t id;
  const char* name;
  uint32_t block;
  uint32_t block_bytes;
};

constexpr GgmlType kGgmlTypes[] = {
    {0, "F32", 1, 4},        {1, "F16", 1, 2},          {2, "Q4_0", 32, 18},      {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},     {7, "Q5_1", 32, 24},       {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},   {11, "Q3_K", 256, 110},    {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},  {15, "Q8_K", 256, 292},    {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},   {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},  {23, "IQ4_XS", 256, 136},  {24, "I8", 1, 1},         {25, "I16", 1, 2},
    {26, "I32", 1, 4},       {27, "I64", 1, 8},         {28, "F64", 1, 8},        {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},      {34, "TQ1_0", 256, 54},    {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},
};

const GgmlType* ggml_type(uint32_t id) {
  for (const GgmlType& t : kGgmlTypes) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

bool computable(uint32_t id, DType* out) {
  switch (id) {
    case 0: *out = DType::F32; return true;
    case 1: *out = DType::F16; return true;
    case 2: *out = DType::Q4_0; return true;
    case 8: *out = DType::Q8_0; return true;
    case 12: *out = DType::Q4_K; return true;
    case 13: *out = DType::Q5_K; return true;
    case 14: *out = DType::Q6_K; return true;
    case 30: *out = DType::BF16; return true;
    default: return false;
  }
}

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;  // String, Array: variable
  }
}

bool is_integer(GgufType t) {
  return t == GgufType::U8 || t == GgufType::I8 || t == GgufType::U16 || t == GgufType::I16 || t == GgufType::U32 ||
         t == GgufType::I32 || t == GgufType::U64 || t == GgufType::I64;
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  static const char* names[] = {"uint8", "int8",   "uint16", "int16", "uint32", "int32", "float32",
                                "bool",  "string", "array",  "uint64", "int64", "float64"};
  const uint32_t i = (uint32_t)t;
  return i < 13 ? names[i] : "unknown";
}

GgufFile::GgufFile(const std::string& path) : file_(MappedFile::open(path)) {
  ByteReader r(file_->data(), file_->size(), path);
  parse_header(r);
  // Containers grow as entries are parsed (each one backed by real bytes), never from the claimed counts.
  for (uint64_t i = 0; i < n_kv_; i++) {
    kvs_.emplace_back();
    parse_kv(r, kvs_.back());
    CHIMERA_CHECK(kv_index_.emplace(kvs_.back().key, kvs_.size() - 1).second, ErrorCode::Format, path,
                  ": metadata key ", kvs_.back().key, " appears twice");
  }
  int64_t align = 32;
  if (get_int("general.alignment", &align)) {
    CHIMERA_CHECK(align > 0 && align <= (1 << 30) && is_power_of_two((uint64_t)align), ErrorCode::Format, path,
                  ": general.alignment is ", align, ", expected a power of two");
  }
  alignment_ = (uint64_t)align;
  std::vector<uint32_t> types;
  std::vector<uint64_t> offsets;
  for (uint64_t i = 0; i < n_tensors_; i++) {
    tensors_.emplace_back();
    types.push_back(0);
    offsets.push_back(0);
    parse_tensor_info(r, tensors_.back(), &types.back(), &offsets.back());
    CHIMERA_CHECK(tensor_index_.emplace(tensors_.back().name, tensors_.size() - 1).second, ErrorCode::Format, path,
                  ": tensor ", tensors_.back().name, " appears twice");
  }
  place_tensors(r, types, offsets);
}

void GgufFile::parse_header(ByteReader& r) {
  const std::string& path = file_->path();
  const uint8_t* magic = r.take(4);
  CHIMERA_CHECK(magic[0] == 'G' && magic[1] == 'G' && magic[2] == 'U' && magic[3] == 'F', ErrorCode::Format, path,
                ": not a GGUF file (bad magic)");
  version_ = r.u32();
  CHIMERA_CHECK(version_ != 1, ErrorCode::Unsupported, path,
                ": GGUF version 1 is not supported; re-convert the model with a current llama.cpp");
  CHIMERA_CHECK((version_ & 0xFFFF) != 0, ErrorCode::Unsupported, path,
                ": this looks like a big-endian GGUF, which is not supported");
  CHIMERA_CHECK(version_ == 2 || version_ == 3, ErrorCode::Unsupported, path, ": GGUF version ", version_,
                " is not supported (versions 2 and 3 are)");
  n_tensors_ = r.u64();
  n_kv_ = r.u64();
  // Each tensor info takes at least 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset)
  // bytes, each key/value at least 8 (key length) + 4 (type) + 1.
  CHIMERA_CHECK(n_tensors_ <= kMaxTensors && n_tensors_ <= r.remaining() / 32, ErrorCode::Format, path,
                ": tensor count ", n_tensors_, " is impossible for a file of ", r.size(), " bytes");
  CHIMERA_CHECK(n_kv_ <= kMaxKVs && n_kv_ <= r.remaining() / 13, ErrorCode::Format, path, ": metadata count ",
                n_kv_, " is impossible for a file of ", r.size(), " bytes");
}

std::string GgufFile::read_string(ByteReader& r, const char* what) const {
  const size_t at = r.pos();
  const uint64_t len = r.u64();
  if (len > r.remaining()) {
    r.fail(std::string(what) + " at offset " + std::to_string(at) + " claims " + std::to_string(len) +
           " bytes, but only " + std::to_string(r.remaining()) + " are left");
  }
  const uint8_t* p = r.take((size_t)len);
  return std::string(reinterpret_cast<const char*>(p), (size_t)len);
}

void GgufFile::read_scalar(ByteReader& r, GgufType type, GgufKV& kv) const {
  switch (type) {
    case GgufType::U8: kv.i = r.u8(); break;
    case GgufType::I8: kv.i = (int8_t)r.u8(); break;
    case GgufType::U16: kv.i = r.u16(); break;
    case GgufType::I16: kv.i = (int16_t)r.u16(); break;
    case GgufType::U32: kv.i = r.u32(); break;
    case GgufType::I32: kv.i = r.i32(); break;
    case GgufType::U64: kv.u = r.u64(); kv.i = (int64_t)kv.u; break;
    case GgufType::I64: kv.i = r.i64(); break;
    case GgufType::F32: kv.f = r.f32(); break;
    case GgufType::F64: kv.f = r.f64(); break;
    case GgufType::Bool: kv.b = r.u8() != 0; break;
    case GgufType::String: kv.str = read_string(r, "metadata string"); break;
    default: r.fail("metadata key " + kv.key + " has unknown value type " + std::to_string((uint32_t)type));
  }
}

void GgufFile::parse_kv(ByteReader& r, GgufKV& kv) {
  const size_t at = r.pos();
  kv.key = read_string(r, "metadata key");
  if (kv.key.empty() || kv.key.size() > kMaxKeyLength) {
    r.fail("metadata key at offset " + std::to_string(at) + " has length " + std::to_string(kv.key.size()));
  }
  kv.type = (GgufType)r.u32();
  if (kv.type != GgufType::Array) {
    read_scalar(r, kv.type, kv);
    return;
  }
  kv.elem_type = (GgufType)r.u32();
  kv.count = r.u64();
  kv.offset = r.pos();
  skip_array(r, kv.elem_type, kv.count, 1);
}

// Walks an array to validate it and find its end; allocates nothing.
void GgufFile::skip_array(ByteReader& r, GgufType elem, uint64_t count, int depth) {
  if (depth > kMaxArrayDepth) r.fail("metadata arrays nested deeper than 8 levels");
  if (count > kMaxArrayElements) r.fail("metadata array of " + std::to_string(count) + " elements is implausible");
  const size_t size = scalar_size(elem);
  const size_t min_bytes = size ? size : elem == GgufType::String ? 8 : elem == GgufType::Array ? 12 : 0;
  if (min_bytes == 0) r.fail("metadata array has unknown element type " + std::to_string((uint32_t)elem));
  if (count > r.remaining() / min_bytes) {
    r.fail("metadata array at offset " + std::to_string(r.pos()) + " claims " + std::to_string(count) + " " +
           gguf_type_name(elem) + " elements, more than the " + std::to_string(r.remaining()) + " bytes left hold");
  }
  if (size) {
    r.take((size_t)count * size);
  } else if (elem == GgufType::String) {
    for (uint64_t i = 0; i < count; i++) read_string(r, "array string");
  } else {
    for (uint64_t i = 0; i < count; i++) {
      const GgufType inner = (GgufType)r.u32();
      const uint64_t n = r.u64();
      skip_array(r, inner, n, depth + 1);
    }
  }
}

void GgufFile::parse_tensor_info(ByteReader& r, RawTensor& t, uint32_t* type, uint64_t* offset) {
  t.name = read_string(r, "tensor name");
  if (t.name.empty() || t.name.size() > kMaxKeyLength) r.fail("tensor name of length " + std::to_string(t.name.size()));
  const uint32_t n_dims = r.u32();
  if (n_dims < 1 || n_dims > kMaxDims) {
    r.fail("tensor " + t.name + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
  }
  std::vector<int64_t> ne(n_dims);
  for (uint32_t d = 0; d < n_dims; d++) {
    const uint64_t n = r.u64();
    if (n < 1 || n > (uint64_t)INT64_MAX) r.fail("tensor " + t.name + " has dimension " + std::to_string(n));
    ne[d] = (int64_t)n;
  }
  t.shape.assign(ne.rbegin(), ne.rend());  // ggml ne[0] is the innermost (column) dimension
  *type = r.u32();
  *offset = r.u64();
}

// Computes each tensor's byte size and checks that it lies, aligned, inside the data section.
void GgufFile::place_tensors(ByteReader& r, const std::vector<uint32_t>& types, const std::vector<uint64_t>& offsets) {
  const std::string& path = file_->path();
  uint64_t data_start = 0;
  CHIMERA_CHECK(checked_align_up(r.pos(), alignment_, &data_start), ErrorCode::Format, path, ": bad data offset");
  CHIMERA_CHECK(tensors_.empty() || data_start <= file_->size(), ErrorCode::Format, path,
                ": truncated before the tensor data (data starts at ", data_start, ", file has ", file_->size(),
                " bytes)");
  for (size_t i = 0; i < tensors_.size(); i++) {
    RawTensor& t = tensors_[i];
    const GgmlType* gt = ggml_type(types[i]);
    CHIMERA_CHECK(gt != nullptr, ErrorCode::Unsupported, path, ": tensor ", t.name, " has unknown ggml type ",
                  types[i], "; it may need a newer reader");
    t.type_name = gt->name;
    t.supported = computable(types[i], &t.dtype);
    const uint64_t cols = (uint64_t)t.shape.back();
    CHIMERA_CHECK(cols % gt->block == 0, ErrorCode::Format, path, ": tensor ", t.name, " has ", cols, " columns, not a",
                  " multiple of the ", gt->name, " block size ", gt->block);
    uint64_t bytes = 0;
    bool ok = checked_mul(cols / gt->block, gt->block_bytes, &bytes);
    for (size_t d = 0; d + 1 < t.shape.size(); d++) ok = ok && checked_mul(bytes, (uint64_t)t.shape[d], &bytes);
    CHIMERA_CHECK(ok && bytes <= (uint64_t)INT64_MAX, ErrorCode::Format, path, ": tensor ", t.name, " of shape ",
                  shape_string(t.shape), " is impossibly large");
    CHIMERA_CHECK(offsets[i] % alignment_ == 0, ErrorCode::Format, path, ": tensor ", t.name, " data offset ",
                  offsets[i], " is not a multiple of the alignment ", alignment_);
    uint64_t begin = 0;
    CHIMERA_CHECK(checked_add(data_start, offsets[i], &begin) && file_->contains(begin, bytes), ErrorCode::Format,
                  path, ": tensor ", t.name, " (", bytes, " bytes at data offset ", offsets[i],
                  ") lies outside the file of ", file_->size(), " bytes; the file is truncated or corrupt");
    t.data = file_->data() + begin;
    t.bytes = bytes;
  }
}

const GgufKV* GgufFile::find(const std::string& key) const {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second];
}

const RawTensor* GgufFile::tensor(const std::string& name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

bool GgufFile::get_int(const std::string& key, int64_t* out) const {
  const GgufKV* kv = find(key);
  if (!kv) return false;
  CHIMERA_CHECK(is_integer(kv->type), ErrorCode::Format, file_->path(), ": metadata ", key, " has type ",
                gguf_type_name(kv->type), ", expected an integer");
  CHIMERA_CHECK(kv->type != GgufType::U64 || kv->u <= (uint64_t)INT64_MAX, ErrorCode::Format, file_->path(),
                ": metadata ", key, " = ", kv->u, " is out of range");
  *out = kv->i;
  return true;
}

bool GgufFile::get_float(const std::string& key, double* out) const {
  const GgufKV* kv = find(key);
  if (!kv) return false;
  CHIMERA_CHECK(kv->type == GgufType::F32 || kv->type == GgufType::F64, ErrorCode::Format, file_->path(),
                ": metadata ", key, " has type ", gguf_type_name(kv->type), ", expected a float");
  *out = kv->f;
  return true;
}

bool GgufFile::get_bool(const std::string& key, bool* out) const {
  const GgufKV* kv = find(key);
  if (!kv) return false;
  CHIMERA_CHECK(kv->type == GgufType::Bool, ErrorCode::Format, file_->path(), ": metadata ", key, " has type ",
                gguf_type_name(kv->type), ", expected a bool");
  *out = kv->b;
  return true;
}

bool GgufFile::get_string(const std::string& key, std::string* out) const {
  const GgufKV* kv = find(key);
  if (!kv) return false;
  CHIMERA_CHECK(kv->type == GgufType::String, ErrorCode::Format, file_->path(), ": metadata ", key, " has type ",
                gguf_type_name(kv->type), ", expected a string");
  *out = kv->str;
  return true;
}

std::vector<std::string> GgufFile::string_array(const GgufKV& kv) const {
  CHIMERA_CHECK(kv.type == GgufType::Array && kv.elem_type == GgufType::String, ErrorCode::Format, file_->path(),
                ": metadata ", kv.key, " should be an array of strings");
  ByteReader r(file_->data(), file_->size(), file_->path());
  r.seek(kv.offset);
  std::vector<std::string> out;
  out.reserve((size_t)std::min<uint64_t>(kv.count, 1 << 20));  // the rest grows only with real strings
  for (uint64_t i = 0; i < kv.count; i++) out.push_back(read_string(r, "array string"));
  return out;
}

std::vector<float> GgufFile::float_array(const GgufKV& kv) const {
  CHIMERA_CHECK(kv.type == GgufType::Array && (kv.elem_type == GgufType::F32 || kv.elem_type == GgufType::F64),
                ErrorCode::Format, file_->path(), ": metadata ", kv.key, " should be an array of floats");
  ByteReader r(file_->data(), file_->size(), file_->path());
  r.seek(kv.offset);
  std::vector<float> out((size_t)kv.count);
  for (float& f : out) f = kv.elem_type == GgufType::F32 ? r.f32() : (float)r.f64();
  return out;
}

std::vector<int64_t> GgufFile::int_array(const GgufKV& kv) const {
  CHIMERA_CHECK(kv.type == GgufType::Array && is_integer(kv.elem_type), ErrorCode::Format, file_->path(),
                ": metadata ", kv.key, " should be an array of integers");
  ByteReader r(file_->data(), file_->size(), file_->path());
  r.seek(kv.offset);
  std::vector<int64_t> out((size_t)kv.count);
  GgufKV tmp;
  for (int64_t& v : out) {
    read_scalar(r, kv.elem_type, tmp);
    v = tmp.i;
  }
  return out;
}

}  // namespace chimera
