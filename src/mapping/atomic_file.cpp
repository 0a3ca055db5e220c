// Atomic output: a reader (or a crash) never sees a half-written mapping. The content goes to a
// temporary file in the target directory (same file system, so rename is atomic), is fsynced, and
// only then renamed over the target; the directory is fsynced so the rename survives a power loss.
// A run killed before its rename leaves its temporary file behind; the next successful write of
// the same target removes it (remove_stale_temps).

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

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

// Temporary files of `base` are named ".BASE.tmp.XXXXXX" (mkstemp's six characters).
std::string temp_prefix(const std::string& base) { return "." + base + ".tmp."; }

// Test-only hook (tests/e2e/kill_test.sh): EPLB_TEST_SLOW_WRITE_MS=N sleeps N ms after the
// temporary file is written and fsynced and before it is renamed, so a test can kill the process
// exactly there. Unset (always, outside tests) it costs one getenv per written file.
void test_slow_write_hook() {
  const char* ms = std::getenv("EPLB_TEST_SLOW_WRITE_MS");
  if (ms == nullptr || *ms == '\0') return;
  char* end = nullptr;
  const long value = std::strtol(ms, &end, 10);
  if (*end != '\0' || value <= 0) return;
  std::this_thread::sleep_for(std::chrono::milliseconds(std::min(value, 60000L)));
}

// Removes the temporary files an earlier run for the same target left behind when it was killed
// between mkstemp and rename. Only exact ".BASE.tmp.XXXXXX" names are considered, and only those
// whose flock this process can take: a live writer holds its lock until its rename, a dead one
// holds nothing. Best effort: a file that cannot be opened or locked stays.
void remove_stale_temps(const std::string& dir, const std::string& base) {
  const std::string prefix = temp_prefix(base);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (const dirent* entry = ::readdir(d)) {
    const std::string name = entry->d_name;
    if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string full = dir + "/" + name;
    const int fd = ::open(full.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      ::unlink(full.c_str());
    }
    ::close(fd);
  }
  ::closedir(d);
}

// Writes all of `content` to `fd`; false with errno set on failure.
bool write_all(int fd, const std::string& content) {
  const char* data = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

// Writes straight into an existing device or pipe (e.g. /dev/stdout), which cannot be replaced.
status write_in_place(const std::string& path, const std::string& content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return io_error(path, "cannot open");
  if (!write_all(fd, content)) {
    error e = io_error(path, "cannot write");
    ::close(fd);
    return e;
  }
  ::close(fd);
  return status::success();
}

}  // namespace

status write_file_atomic(const std::string& requested, const std::string& content) {
  if (requested.empty()) {
    return make_error(errc::invalid_argument, position{}, "output", "empty path");
  }
  // A symlink is written through, as cp and editors do: its target is replaced atomically and
  // the link stays a link (renaming over the link itself would turn it into a regular file).
  std::string path = requested;
  struct stat lst {};
  if (::lstat(requested.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
    char* real = ::realpath(requested.c_str(), nullptr);
    if (real != nullptr) {
      path = real;
      std::free(real);
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) {
      errno = EISDIR;
      return io_error(requested, "cannot write");
    }
    return write_in_place(path, content);
  }
  const std::string dir = directory_of(path);
  const std::string base =
      path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  std::string tmpl;
  int fd = -1;
  for (;;) {
    tmpl = dir + "/" + temp_prefix(base) + "XXXXXX";
    fd = ::mkstemp(tmpl.data());
    if (fd < 0) return io_error(path, "cannot create a temporary file in " + dir);
    // The lock marks the temporary file as live until this process closes it or dies; a later
    // run only removes temporary files whose lock it can take (see remove_stale_temps). If such
    // a run removed this one between mkstemp and flock, the file has no link left: start over.
    struct stat st {};
    if (::flock(fd, LOCK_EX) == 0 && ::fstat(fd, &st) == 0 && st.st_nlink > 0) break;
    ::close(fd);
  }
  if (!write_all(fd, content)) {
    error e = io_error(path, "cannot write");
    ::close(fd);
    ::unlink(tmpl.c_str());
    return e;
  }
  // Temporary files from mkstemp are 0600; a mapping is shared with the serving processes.
  ::fchmod(fd, 0644);
  if (::fsync(fd) != 0) {
    error e = io_error(path, "cannot flush");
    ::close(fd);
    ::unlink(tmpl.c_str());
    return e;
  }
  test_slow_write_hook();
  // Renamed while still open and locked, so no other run takes it for a stale file meanwhile.
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    error e = io_error(path, "cannot rename the temporary file into place");
    ::close(fd);
    ::unlink(tmpl.c_str());
    return e;
  }
  // The data is on disk (fsync above); a failing close cannot lose it any more.
  ::close(fd);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  remove_stale_temps(dir, base);
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
