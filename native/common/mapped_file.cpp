// Read-only whole-file mappings (mmap / MapViewOfFile), whole-file text reads, and the bounds-checked
// little-endian ByteReader that every binary loader parses through.
#include "common/mapped_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#define NOMINMAX
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace chimera {

#ifdef _WIN32

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> mf(new MappedFile());
  mf->path_ = path;
  HANDLE file = CreateFileA(path.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING,
                            FILE_ATTRIBUTE_NORMAL, nullptr);
  CHIMERA_CHECK(file != INVALID_HANDLE_VALUE, ErrorCode::NotFound, "cannot open ", path,
                ": no such file, or it is not readable");
  LARGE_INTEGER size;
  if (!GetFileSizeEx(file, &size)) {
    CloseHandle(file);
    throw_error(ErrorCode::NotFound, "cannot read the size of ", path);
  }
  if (size.QuadPart == 0) {
    CloseHandle(file);
    throw_error(ErrorCode::Format, path, ": the file is empty");
  }
  HANDLE mapping = CreateFileMappingA(file, nullptr, PAGE_READONLY, 0, 0, nullptr);
  CloseHandle(file);
  CHIMERA_CHECK(mapping != nullptr, ErrorCode::OutOfMemory, "cannot map ", path, " into memory");
  void* view = MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0);
  CloseHandle(mapping);  // the view keeps the mapping alive
  CHIMERA_CHECK(view != nullptr, ErrorCode::OutOfMemory, "cannot map ", path, " into memory");
  mf->data_ = static_cast<const uint8_t*>(view);
  mf->size_ = (size_t)size.QuadPart;
  return mf;
}

MappedFile::~MappedFile() {
  if (data_) UnmapViewOfFile(data_);
}

#else

// Opens `path` for reading without ever blocking: a FIFO, socket or device is refused before any
// open, and O_NONBLOCK covers a file swapped for a FIFO in between. Returns the descriptor and size.
static int open_regular_file(const std::string& path, off_t* size) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw_error(ErrorCode::NotFound, "cannot open ", path, ": ", std::strerror(errno));
  CHIMERA_CHECK(!S_ISDIR(st.st_mode), ErrorCode::NotFound, "cannot open ", path, ": it is a directory, not a file");
  CHIMERA_CHECK(S_ISREG(st.st_mode), ErrorCode::NotFound, "cannot open ", path,
                ": not a regular file (a FIFO, socket or device cannot be loaded)");
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  CHIMERA_CHECK(fd >= 0, ErrorCode::NotFound, "cannot open ", path, ": ", std::strerror(errno));
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_error(ErrorCode::NotFound, "cannot open ", path, ": not a regular file");
  }
  *size = st.st_size;
  return fd;
}

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  std::shared_ptr<MappedFile> mf(new MappedFile());
  mf->path_ = path;
  off_t size = 0;
  const int fd = open_regular_file(path, &size);
  if (size == 0) {
    ::close(fd);
    throw_error(ErrorCode::Format, path, ": the file is empty");
  }
  void* p = mmap(nullptr, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping stays valid after close
  CHIMERA_CHECK(p != MAP_FAILED, ErrorCode::OutOfMemory, "cannot map ", path, " into memory: ",
                std::strerror(map_errno));
  mf->data_ = static_cast<const uint8_t*>(p);
  mf->size_ = (size_t)size;
  return mf;
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

#endif

void MappedFile::prefault() const {
#if defined(__linux__) && defined(MADV_POPULATE_READ)
  // One call faults every page in (Linux 5.14 and later); older kernels refuse it, and fall through.
  if (madvise(const_cast<uint8_t*>(data_), size_, MADV_POPULATE_READ) == 0) return;
#endif
  // A read of one byte per page does the same, a fault at a time.
  constexpr size_t kPage = 4096;
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < size_; i += kPage) sink = sink + data_[i];
  (void)sink;
}

bool MappedFile::drop_pages(const void* p, size_t n) const {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p), base = reinterpret_cast<uintptr_t>(data_);
  if (!p || a < base || n > size_ || a - base > size_ - n) return false;
#if defined(__linux__) && defined(MADV_DONTNEED)
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const uintptr_t lo = (a + page - 1) / page * page, hi = (a + n) / page * page;
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);  // advice: a refusal changes nothing
#endif
  return true;
}

std::string read_text_file(const std::string& path) {
#ifdef _WIN32
  std::ifstream in(path, std::ios::binary);
  CHIMERA_CHECK(in.good(), ErrorCode::NotFound, "cannot open ", path, ": no such file, or it is not readable");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  CHIMERA_CHECK(size >= 0, ErrorCode::NotFound, "cannot read ", path, " (is it a directory?)");
  CHIMERA_CHECK((uint64_t)size <= kMaxTextFileBytes, ErrorCode::Format, path, ": ", size, " bytes is larger than the ",
                kMaxTextFileBytes >> 20, " MiB limit for a JSON or text side file");
  in.seekg(0, std::ios::beg);
  std::string text((size_t)size, '\0');
  in.read(&text[0], size);
  CHIMERA_CHECK(in.gcount() == size, ErrorCode::Format, path, ": short read (", in.gcount(), " of ", size, " bytes)");
  return text;
#else
  off_t size = 0;
  const int fd = open_regular_file(path, &size);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  CHIMERA_CHECK((uint64_t)size <= kMaxTextFileBytes, ErrorCode::Format, path, ": ", (uint64_t)size,
                " bytes is larger than the ", kMaxTextFileBytes >> 20, " MiB limit for a JSON or text side file");
  std::string text((size_t)size, '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, &text[got], text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    CHIMERA_CHECK(n > 0, ErrorCode::Format, path, ": short read (", got, " of ", text.size(), " bytes)");
    got += (size_t)n;
  }
  return text;
#endif
}

void ByteReader::fail(const std::string& msg) const { throw_error(ErrorCode::Format, what_, ": ", msg); }

void ByteReader::seek(size_t pos) {
  if (pos > size_) {
    std::ostringstream os;
    os << "offset " << pos << " is past the end (size " << size_ << ")";
    fail(os.str());
  }
  pos_ = pos;
}

const uint8_t* ByteReader::take(size_t n) {
  if (n > size_ - pos_) {
    std::ostringstream os;
    os << "truncated at offset " << pos_ << " (need " << n << " bytes, " << (size_ - pos_) << " left)";
    fail(os.str());
  }
  const uint8_t* p = data_ + pos_;
  pos_ += n;
  return p;
}

// Explicit little-endian assembly: correct on any host byte order and for unaligned data.
uint8_t ByteReader::u8() { return *take(1); }

uint16_t ByteReader::u16() {
  const uint8_t* p = take(2);
  return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t ByteReader::u32() {
  const uint8_t* p = take(4);
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

uint64_t ByteReader::u64() {
  const uint8_t* p = take(8);
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

float ByteReader::f32() {
  const uint32_t bits = u32();
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

double ByteReader::f64() {
  const uint64_t bits = u64();
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

}  // namespace chimera
