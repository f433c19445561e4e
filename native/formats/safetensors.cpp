// safetensors parsing: header length bounded, header parsed as strict JSON, every tensor's byte range
// checked against the data area and against shape x element size.
#include "formats/safetensors.h"

#include "common/checked_math.h"
#include "common/error.h"
#include "common/json.h"

namespace chimera {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the reference implementation's own limit

struct StDtype {
  const char* name;
  uint32_t bytes;
};

// Element sizes of the safetensors dtypes, so ranges can be checked even for tensors we will not use.
constexpr StDtype kDtypes[] = {{"F64", 8}, {"F32", 4},     {"F16", 2},     {"BF16", 2}, {"I64", 8},
                               {"U64", 8}, {"I32", 4},     {"U32", 4},     {"I16", 2},  {"U16", 2},
                               {"I8", 1},  {"U8", 1},      {"BOOL", 1},    {"F8_E4M3", 1}, {"F8_E5M2", 1},
                               {"F8_E8M0", 1}};

const StDtype* find_dtype(const std::string& name) {
  for (const StDtype& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

bool computable(const std::string& name, DType* out) {
  if (name == "F32") { *out = DType::F32; return true; }
  if (name == "F16") { *out = DType::F16; return true; }
  if (name == "BF16") { *out = DType::BF16; return true; }
  return false;
}

uint64_t non_negative(const Json& j, const std::string& what) {
  const int64_t v = j.integer(what.c_str());
  CHIMERA_CHECK(v >= 0, ErrorCode::Format, what, ": negative value ", v);
  return (uint64_t)v;
}

// One header entry -> RawTensor, with its range checked inside the data area [data, data + data_size).
RawTensor parse_entry(const std::string& name, const Json& info, const uint8_t* data, uint64_t data_size,
                      const std::string& path) {
  const std::string what = path + ": tensor " + name;
  RawTensor t;
  t.name = name;
  info.object(what.c_str());
  const Json* dtype = info.find("dtype");
  const Json* shape = info.find("shape");
  const Json* offsets = info.find("data_offsets");
  CHIMERA_CHECK(dtype && shape && offsets, ErrorCode::Format, what, ": needs dtype, shape and data_offsets");
  t.type_name = dtype->string((what + " dtype").c_str());
  const StDtype* dt = find_dtype(t.type_name);
  CHIMERA_CHECK(dt != nullptr, ErrorCode::Unsupported, what, ": unknown dtype ", t.type_name);
  t.supported = computable(t.type_name, &t.dtype);
  uint64_t bytes = dt->bytes;
  const auto& dims = shape->array((what + " shape").c_str());
  CHIMERA_CHECK(dims.size() <= 8, ErrorCode::Format, what, ": ", dims.size(), " dimensions is implausible");
  for (const Json& d : dims) {
    const uint64_t n = non_negative(d, what + " shape");
    CHIMERA_CHECK(checked_mul(bytes, n, &bytes) && bytes <= (uint64_t)INT64_MAX, ErrorCode::Format, what,
                  ": shape is impossibly large");
    t.shape.push_back((int64_t)n);
  }
  const auto& range = offsets->array((what + " data_offsets").c_str());
  CHIMERA_CHECK(range.size() == 2, ErrorCode::Format, what, ": data_offsets must be [begin, end]");
  const uint64_t begin = non_negative(range[0], what + " data_offsets");
  const uint64_t end = non_negative(range[1], what + " data_offsets");
  CHIMERA_CHECK(begin <= end && end <= data_size, ErrorCode::Format, what, ": data_offsets [", begin, ", ", end,
                "] lie outside the data area of ", data_size, " bytes; the file is truncated or corrupt");
  CHIMERA_CHECK(end - begin == bytes, ErrorCode::Format, what, ": data_offsets span ", end - begin, " bytes, but ",
                shape_string(t.shape), " ", t.type_name, " needs ", bytes);
  t.data = data + begin;
  t.bytes = bytes;
  return t;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(MappedFile::open(path)) {
  ByteReader r(file_->data(), file_->size(), path);
  const uint64_t header_len = r.u64();
  CHIMERA_CHECK(header_len <= kMaxHeaderBytes && header_len <= r.remaining(), ErrorCode::Format, path,
                ": header length ", header_len, " is invalid for a file of ", file_->size(),
                " bytes (not a safetensors file, or truncated)");
  const uint8_t* header = r.take((size_t)header_len);
  const JsonDocument root = Json::parse(std::string(reinterpret_cast<const char*>(header), (size_t)header_len), path + " header");
  const uint8_t* data = header + header_len;
  const uint64_t data_size = r.remaining();
  for (const auto& kv : root.object((path + " header").c_str())) {
    if (kv.first == "__metadata__") {
      const std::string what = path + " __metadata__";
      for (const auto& m : kv.second.object(what.c_str()))
        metadata_.emplace_back(std::string(m.first), std::string(m.second.string(what.c_str())));
      continue;
    }
    tensors_.push_back(parse_entry(std::string(kv.first), kv.second, data, data_size, path));
    index_.emplace(std::string(kv.first), tensors_.size() - 1);  // keys are unique: the JSON parser rejects duplicates
  }
}

const RawTensor* SafetensorsFile::tensor(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace chimera
