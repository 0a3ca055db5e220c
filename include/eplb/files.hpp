#pragma once
// The files a run reads and writes: atomic outputs (one file, a set of files written all or
// nothing, or a stream), file identity (an output never overwrites an input, an input is never
// read twice), and whole-file reads bounded by a size limit.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eplb/error.hpp"
#include "eplb/limits.hpp"

namespace eplb {

/// One output: a temporary file beside the target, renamed over it by commit(), so a reader never
/// sees half a file and a failed or killed run leaves the previous file as it was. "-" is
/// standard output, and an existing device or FIFO is written in place; both get their bytes at
/// flush(). A symlink is written through (its target is replaced, the link stays). Missing parent
/// directories are created, and removed again when the output is abandoned.
class atomic_output {
 public:
  atomic_output();
  ~atomic_output();  // abandons an output that was not committed
  atomic_output(atomic_output&&) noexcept;
  atomic_output& operator=(atomic_output&&) noexcept;

  /// Opens the output; io_error naming the target (a directory, an unwritable or full directory).
  status open(const std::string& path);
  /// Appends bytes; io_error when they cannot be written.
  status write(std::string_view data);
  /// Makes the bytes durable: fsync of the temporary file, or the write to stdout or the device
  /// (flushed and checked); after it only the rename can fail.
  status flush();
  /// Renames the temporary file into place (flush() first if needed) and syncs the directory.
  status commit();
  /// Removes the temporary file and the directories open() created; the target stays untouched.
  void abandon() noexcept;
  /// Returns true for standard output and devices (bytes go out at flush(), nothing is renamed).
  bool in_place() const noexcept;

 private:
  struct state;
  std::unique_ptr<state> s_;
};

/// Writes `content` to `path` atomically (see atomic_output); io_error naming the path, and any
/// previous file untouched, on failure.
status write_file_atomic(const std::string& path, const std::string& content);

/// A file to write: its path ("-" for standard output) and its content.
struct output_file {
  std::string path;
  std::string content;
};

/// Writes every file or none: all temporary files are written and synced first, then standard
/// output and devices, and only when all of that succeeded are the temporary files renamed into
/// place. On failure every temporary file (and created directory) is removed and every previous
/// file stays as it was; returns the first error.
status write_files_atomic(const std::vector<output_file>& files);

/// A path a run reads or writes and the flag that named it ("--stats", "-o"), for messages.
struct named_path {
  std::string flag;
  std::string path;
};

/// Returns invalid_argument naming both when an output is the same file as an input or as another
/// output: by device and inode after resolving links, a file that does not exist yet by its
/// resolved directory and name. Two outputs to standard output ("-") clash too; devices and FIFOs
/// never do. A directory among the inputs stands for the files in it.
status check_output_paths(const std::vector<named_path>& inputs,
                          const std::vector<named_path>& outputs);

/// Returns invalid_argument when two of the paths name the same file (by device and inode, so
/// "t.jsonl", "./t.jsonl", a link to it and its absolute path are one file): its records would be
/// counted twice. `flag` (may be empty) precedes the path in the message. Paths that cannot be
/// opened compare by their spelling.
status check_distinct_inputs(const std::vector<std::string>& paths, const std::string& flag);

/// Reads a whole file (regular, FIFO or device) of at most `max_bytes`; io_error naming the path
/// when it cannot be read, limit_exceeded when it is longer (reading stops there).
result<std::string> read_file(const std::string& path,
                              std::uint64_t max_bytes = limits::max_mapping_file_bytes);

}  // namespace eplb
