// Atomic output: a reader (or a crash) never sees a half-written mapping. The content goes to a
// temporary file in the target directory (same file system, so rename is atomic), is fsynced, and
// only then renamed over the target; the directory is fsynced so the rename survives a power loss.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "eplb/mapping.hpp"

namespace eplb {

namespace {

error io_error(const std::string& path, const std::string& what) {
  return make_error(errc::io_error, position{path, 0, 0}, "", what + ": " + std::strerror(errno));
}

std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

status write_file_atomic(const std::string& path, const std::string& content) {
  if (path.empty()) return make_error(errc::invalid_argument, position{}, "output", "empty path");
  const std::string dir = directory_of(path);
  const std::string base = path.substr(path.find_last_of('/') == std::string::npos
                                           ? 0
                                           : path.find_last_of('/') + 1);
  std::string tmpl = dir + "/." + base + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return io_error(path, "cannot create a temporary file in " + dir);
  const char* data = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      error e = io_error(path, "cannot write");
      ::close(fd);
      ::unlink(tmpl.c_str());
      return e;
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  // Temporary files from mkstemp are 0600; a mapping is shared with the serving processes.
  ::fchmod(fd, 0644);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    error e = io_error(path, "cannot flush");
    ::unlink(tmpl.c_str());
    return e;
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    error e = io_error(path, "cannot rename the temporary file into place");
    ::unlink(tmpl.c_str());
    return e;
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return status::success();
}

result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(path, "cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return io_error(path, "cannot read");
  return ss.str();
}

}  // namespace eplb
