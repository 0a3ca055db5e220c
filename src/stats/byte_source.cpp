#include "stats/byte_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace eplb::detail {

namespace {

error io_failure(const std::string& path, const char* what, int err) {
  std::string msg = what;
  msg += ": ";
  msg += std::generic_category().message(err);
  return make_error(errc::io_error, position{path, 0, 0}, "", msg);
}

}  // namespace

result<std::size_t> memory_source::read(char* dst, std::size_t n) {
  const std::size_t count = std::min(n, text_.size() - pos_);
  if (count > 0) std::memcpy(dst, text_.data() + pos_, count);
  pos_ += count;
  return count;
}

file_source::~file_source() {
  if (fd_ >= 0 && owned_) ::close(fd_);
}

void file_source::adopt(int fd, const std::string& path) {
  path_ = path;
  fd_ = fd;
  owned_ = false;
  size_ = 0;
}

result<std::size_t> prefixed_source::read(char* dst, std::size_t n) {
  std::size_t total = 0;
  if (pos_ < prefix_.size()) {
    total = std::min(n, prefix_.size() - pos_);
    std::memcpy(dst, prefix_.data() + pos_, total);
    pos_ += total;
  }
  if (total == n) return total;
  auto got = raw_->read(dst + total, n - total);
  if (!got) return got;
  return total + *got;
}

status file_source::open(const std::string& path) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return io_failure(path, "cannot open", errno);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return io_failure(path, "cannot stat", errno);
  if (S_ISDIR(st.st_mode)) return io_failure(path, "cannot read", EISDIR);
  size_ = S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
  return status::success();
}

result<std::size_t> file_source::read(char* dst, std::size_t n) {
  std::size_t total = 0;
  // Fill the request unless the input ends, so a short read from a pipe is not mistaken for EOF.
  while (total < n) {
    const ssize_t got = ::read(fd_, dst + total, n - total);
    if (got < 0) {
      if (errno == EINTR) continue;
      return io_failure(path_, "read failed", errno);
    }
    if (got == 0) break;
    total += static_cast<std::size_t>(got);
  }
  offset_ += total;
  return total;
}

}  // namespace eplb::detail
