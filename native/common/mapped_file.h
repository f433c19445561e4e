// A read-only memory mapping of a whole file, with bounds-checked access helpers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace chimera {

class MappedFile {
 public:
  // Throws E_NOT_FOUND when the file cannot be opened, E_FORMAT when it is empty.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Brings the whole file into memory and into this process's page tables now, so that the first pass
  // over the weights does not stop on a page fault per 4 KB (about 0.1 s per GB, and the disk reads of a
  // file not cached yet): loading takes that time instead of the first token (load_model, every format).
  void prefault() const;

  // Takes the whole pages inside [p, p + n) out of this process's page tables (Linux; elsewhere nothing),
  // for weights that a repacked copy replaced: they stay in the page cache, which the OS may reclaim,
  // and a later read of them faults them back in from it (the mapping is read-only, so no data is lost).
  // Returns false when the range is not inside this file's mapping.
  bool drop_pages(const void* p, size_t n) const;

  // True when [offset, offset + len) lies inside the file (no overflow).
  bool contains(uint64_t offset, uint64_t len) const { return offset <= size_ && len <= size_ - offset; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// The largest JSON or text side file read (config.json, tokenizer.json): real ones are a few MB (a
// 256k-token byte-level BPE tokenizer.json is about 20 MB).
constexpr uint64_t kMaxTextFileBytes = 128ull << 20;

// Reads a whole (small) regular file into a string. Throws E_NOT_FOUND (missing, a directory, a FIFO
// or device: refused before any blocking open) or E_FORMAT (over kMaxTextFileBytes).
std::string read_text_file(const std::string& path);

// Sequential little-endian reader over a byte range; every read is bounds-checked and a short read
// throws E_FORMAT naming `what` (the file or structure being read).
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, std::string what) : data_(data), size_(size), what_(std::move(what)) {}
  size_t pos() const { return pos_; }
  size_t size() const { return size_; }
  size_t remaining() const { return size_ - pos_; }
  void seek(size_t pos);
  const uint8_t* take(size_t n);  // returns a pointer to n bytes and advances
  uint8_t u8();
  uint16_t u16();
  uint32_t u32();
  uint64_t u64();
  int32_t i32() { return (int32_t)u32(); }
  int64_t i64() { return (int64_t)u64(); }
  float f32();
  double f64();
  [[noreturn]] void fail(const std::string& msg) const;

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string what_;
};

}  // namespace chimera
