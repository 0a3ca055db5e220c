// Atomic output: a reader (or a crash) never sees a half-written file. The content goes to a
// temporary file in the target directory (same file system, so rename is atomic), is fsynced, and
// only then renamed over the target; the directory is fsynced so the rename survives a power loss.
// A run killed before its rename leaves its temporary file behind; the next successful write of
// the same target removes it (remove_stale_temps). Several outputs are written all or nothing:
// every temporary file first, then standard output and devices, then the renames.

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include "eplb/files.hpp"
#include "stats/text.hpp"

namespace eplb {

namespace {

using detail::cat;

error io_error(const std::string& path, const std::string& what, int err = errno) {
  return make_error(errc::io_error, position{path, 0, 0}, "", what + ": " + std::strerror(err));
}

std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
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

// Writes all of `data` to `fd`; false with errno set on failure.
bool write_all(int fd, std::string_view data) {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

// Creates the missing directories of `dir` (parents first); appends each one created to
// `created`. io_error naming the first that cannot be created.
status make_directories(const std::string& dir, std::vector<std::string>& created) {
  struct stat st {};
  if (dir.empty() || ::stat(dir.c_str(), &st) == 0) return status::success();
  const std::string parent = directory_of(dir);
  if (parent != dir) {
    if (status s = make_directories(parent, created); !s.ok()) return s;
  }
  if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) {
    return io_error(dir, "cannot create the directory");
  }
  created.push_back(dir);
  return status::success();
}

// Bytes kept before they are written to a temporary file.
constexpr std::size_t write_buffer_bytes = std::size_t{1} << 20;

}  // namespace

struct atomic_output::state {
  enum class kind { temp, in_place, stdout_stream };
  kind mode = kind::temp;
  std::string requested;  // the path as given, for messages
  std::string path;       // the target after resolving a symlink
  std::string dir, base;
  std::string temp;  // the temporary file (mode temp)
  int fd = -1;
  std::string buffer;
  std::vector<std::string> created_dirs;
  bool flushed = false;
  bool committed = false;

  status drain() {
    if (buffer.empty()) return status::success();
    if (!write_all(fd, buffer)) {
      return mode == kind::stdout_stream ? io_error("standard output", "cannot write")
                                         : io_error(requested, "cannot write");
    }
    buffer.clear();
    return status::success();
  }
};

atomic_output::atomic_output() : s_(std::make_unique<state>()) {}
atomic_output::atomic_output(atomic_output&&) noexcept = default;
atomic_output& atomic_output::operator=(atomic_output&& other) noexcept {
  if (this != &other) {
    abandon();
    s_ = std::move(other.s_);
  }
  return *this;
}
atomic_output::~atomic_output() { abandon(); }

bool atomic_output::in_place() const noexcept { return s_ && s_->mode != state::kind::temp; }

status atomic_output::open(const std::string& requested) {
  state& s = *s_;
  if (requested.empty()) {
    return make_error(errc::invalid_argument, position{}, "output", "empty path");
  }
  s.requested = requested;
  if (requested == "-") {
    s.mode = state::kind::stdout_stream;
    s.fd = STDOUT_FILENO;
    return status::success();
  }
  // A symlink is written through, as cp and editors do: its target is replaced atomically and
  // the link stays a link (renaming over the link itself would turn it into a regular file).
  s.path = requested;
  struct stat lst {};
  if (::lstat(requested.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
    char* real = ::realpath(requested.c_str(), nullptr);
    if (real != nullptr) {
      s.path = real;
      std::free(real);
    } else if (errno == ELOOP) {
      return io_error(requested, "cannot write");
    }
  }
  struct stat st {};
  if (::stat(s.path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) return io_error(requested, "cannot write", EISDIR);
    // A device or FIFO (/dev/stdout, /dev/null) cannot be replaced: its bytes go in at flush().
    s.fd = ::open(s.path.c_str(), O_WRONLY | O_CLOEXEC);
    if (s.fd < 0) return io_error(requested, "cannot open");
    s.mode = state::kind::in_place;
    return status::success();
  }
  s.dir = directory_of(s.path);
  s.base = base_of(s.path);
  if (status made = make_directories(s.dir, s.created_dirs); !made.ok()) {
    abandon();
    return made;
  }
  for (;;) {
    s.temp = s.dir + "/" + temp_prefix(s.base) + "XXXXXX";
    s.fd = ::mkstemp(s.temp.data());
    if (s.fd < 0) {
      error e = io_error(s.path, "cannot create a temporary file in " + s.dir);
      s.temp.clear();
      abandon();
      return e;
    }
    // The lock marks the temporary file as live until this process closes it or dies; a later
    // run only removes temporary files whose lock it can take (see remove_stale_temps). If such
    // a run removed this one between mkstemp and flock, the file has no link left: start over.
    struct stat tst {};
    if (::flock(s.fd, LOCK_EX) == 0 && ::fstat(s.fd, &tst) == 0 && tst.st_nlink > 0) break;
    ::close(s.fd);
    s.fd = -1;
  }
  // Temporary files from mkstemp are 0600; a mapping is shared with the serving processes.
  ::fchmod(s.fd, 0644);
  return status::success();
}

status atomic_output::write(std::string_view data) {
  state& s = *s_;
  s.buffer.append(data.data(), data.size());
  // Standard output and devices get their bytes at flush(), after every temporary file of a set
  // is ready (write_files_atomic); streams to stdout (synth -o -) flush as they go.
  if (s.mode == state::kind::in_place) return status::success();
  if (s.buffer.size() < write_buffer_bytes) return status::success();
  if (s.mode == state::kind::stdout_stream) std::fflush(stdout);
  return s.drain();
}

status atomic_output::flush() {
  state& s = *s_;
  if (s.flushed) return status::success();
  if (s.mode == state::kind::stdout_stream) std::fflush(stdout);  // keep the order of prints
  if (status d = s.drain(); !d.ok()) return d;
  if (s.mode == state::kind::temp) {
    if (::fsync(s.fd) != 0) return io_error(s.path, "cannot flush");
    test_slow_write_hook();
  }
  s.flushed = true;
  return status::success();
}

status atomic_output::commit() {
  state& s = *s_;
  if (status f = flush(); !f.ok()) return f;
  if (s.mode != state::kind::temp) {
    if (s.mode == state::kind::in_place && ::close(s.fd) != 0) {
      s.fd = -1;
      return io_error(s.requested, "cannot write");
    }
    s.fd = -1;
    s.committed = true;
    return status::success();
  }
  // Renamed while still open and locked, so no other run takes it for a stale file meanwhile.
  if (::rename(s.temp.c_str(), s.path.c_str()) != 0) {
    return io_error(s.path, "cannot rename the temporary file into place");
  }
  s.committed = true;
  // The data is on disk (fsync above); a failing close cannot lose it any more.
  ::close(s.fd);
  s.fd = -1;
  const int dfd = ::open(s.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  remove_stale_temps(s.dir, s.base);
  return status::success();
}

void atomic_output::abandon() noexcept {
  if (!s_ || s_->committed) return;
  state& s = *s_;
  if (s.fd >= 0 && s.mode != state::kind::stdout_stream) ::close(s.fd);
  s.fd = -1;
  if (!s.temp.empty()) ::unlink(s.temp.c_str());
  s.temp.clear();
  for (auto it = s.created_dirs.rbegin(); it != s.created_dirs.rend(); ++it) ::rmdir(it->c_str());
  s.created_dirs.clear();
  s.buffer.clear();
  s.committed = true;  // nothing left to do
}

status write_file_atomic(const std::string& path, const std::string& content) {
  // One output needs no ordering of flushes (write_files_atomic), nor a copy of the content; the
  // destructor abandons it on failure.
  atomic_output out;
  if (status s = out.open(path); !s.ok()) return s;
  if (status s = out.write(content); !s.ok()) return s;
  return out.commit();
}

status write_files_atomic(const std::vector<output_file>& files) {
  std::vector<atomic_output> outs(files.size());
  // On any failure the outputs are abandoned last opened first, so a directory two outputs share
  // is empty when the one that created it removes it.
  auto fail = [&](status s) {
    for (auto it = outs.rbegin(); it != outs.rend(); ++it) it->abandon();
    return s;
  };
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (status s = outs[i].open(files[i].path); !s.ok()) return fail(s);
    if (status s = outs[i].write(files[i].content); !s.ok()) return fail(s);
  }
  // Temporary files first, then what cannot be taken back (stdout, devices), then the renames.
  for (const bool in_place : {false, true}) {
    for (atomic_output& out : outs) {
      if (out.in_place() != in_place) continue;
      if (status s = out.flush(); !s.ok()) return fail(s);
    }
  }
  for (atomic_output& out : outs) {
    if (status s = out.commit(); !s.ok()) return fail(s);
  }
  return status::success();
}

result<std::string> read_file(const std::string& path, std::uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error(path, "cannot open");
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return io_error(path, "cannot read", EISDIR);
  }
  std::string data;
  if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) <= max_bytes) {
    data.reserve(static_cast<std::size_t>(st.st_size));
  }
  char chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      error e = io_error(path, "cannot read");
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    if (data.size() + static_cast<std::size_t>(n) > max_bytes) {
      ::close(fd);
      return make_error(errc::limit_exceeded, position{path, 0, 0}, "",
                        cat("larger than the limit of ", max_bytes, " bytes (docs/limits.md)"));
    }
    data.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return data;
}

}  // namespace eplb
