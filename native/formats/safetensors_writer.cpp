// safetensors writer.
#include "formats/safetensors_writer.h"

#include <cstdio>

#include "common/error.h"
#include "common/json.h"

namespace chimera {

static const char* st_dtype(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    default: throw_error(ErrorCode::Unsupported, "safetensors cannot store ", dtype_name(t));
  }
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  JsonValue header = JsonValue::make_object();
  if (!metadata.empty()) {
    JsonValue meta = JsonValue::make_object();
    for (const auto& kv : metadata) meta.set(kv.first, JsonValue::make_string(kv.second));
    header.set("__metadata__", meta);
  }
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const auto& t : tensors) {
    uint64_t n = 1;
    JsonValue shape = JsonValue::make_array();
    for (int64_t d : t.shape) {
      n *= (uint64_t)d;
      shape.push(JsonValue::make_number((double)d));
    }
    const uint64_t bytes = t.int32 ? n * sizeof(int32_t) : dtype_row_bytes(t.dtype, n);
    JsonValue entry = JsonValue::make_object();
    entry.set("dtype", JsonValue::make_string(t.int32 ? "I32" : st_dtype(t.dtype)));
    entry.set("shape", shape);
    JsonValue offs = JsonValue::make_array();
    offs.push(JsonValue::make_number((double)offset));
    offs.push(JsonValue::make_number((double)(offset + bytes)));
    entry.set("data_offsets", offs);
    header.set(t.name, entry);
    sizes.push_back(bytes);
    offset += bytes;
  }
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text += ' ';  // keep the data area 8-byte aligned
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  CHIMERA_CHECK(f, ErrorCode::NotFound, "cannot write ", tmp);
  bool ok = true;
  uint8_t len[8];
  for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)text.size() >> (8 * i));
  ok &= std::fwrite(len, 1, 8, f) == 8;
  ok &= std::fwrite(text.data(), 1, text.size(), f) == text.size();
  for (size_t i = 0; i < tensors.size() && ok; i++)
    ok &= std::fwrite(tensors[i].data, 1, sizes[i], f) == sizes[i];
  ok &= std::fclose(f) == 0;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw_error(ErrorCode::NotFound, "could not write ", path, " (disk full or no permission?)");
  }
}

}  // namespace chimera
