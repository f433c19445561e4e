// The safetensors container: an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and [begin, end) byte range in the data area that follows. Validated completely on open.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/mapped_file.h"
#include "model/weight_import.h"

namespace chimera {

class SafetensorsFile {
 public:
  // Maps and parses `path`; throws E_NOT_FOUND / E_FORMAT / E_UNSUPPORTED.
  explicit SafetensorsFile(const std::string& path);

  const std::shared_ptr<MappedFile>& file() const { return file_; }
  const std::vector<RawTensor>& tensors() const { return tensors_; }
  const RawTensor* tensor(const std::string& name) const;  // nullptr when absent
  // The string key/value pairs of `__metadata__`, in file order.
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<RawTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

}  // namespace chimera
