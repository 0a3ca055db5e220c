// File identity: which paths name the same file, so that an output never overwrites an input or
// another output, and an input given twice (under two spellings) is not counted twice.

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "eplb/files.hpp"

namespace eplb {

namespace {

// What a path stands for: "id:DEV:INO" for an existing file, "new:DEV:INO/NAME" for a file to be
// created in an existing directory, "path:ABSOLUTE" for one whose directory is missing too,
// "stdout" for "-"; nullopt for devices and FIFOs (writing them twice harms no file).
std::optional<std::string> identity_of(const std::string& path) {
  if (path == "-") return std::string("stdout");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return std::nullopt;
    return "id:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  }
  // Not there (or a dangling link): the directory it will be created in, and its name.
  std::string target = path;
  char link[4096];
  const ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
  if (n > 0) {
    link[n] = '\0';
    const auto slash = path.find_last_of('/');
    target = link[0] == '/' || slash == std::string::npos ? std::string(link)
                                                          : path.substr(0, slash + 1) + link;
  }
  const auto slash = target.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : target.substr(0, slash + 1);
  const std::string name = slash == std::string::npos ? target : target.substr(slash + 1);
  if (::stat(dir.c_str(), &st) == 0) {
    return "new:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + "/" + name;
  }
  char cwd[4096];
  const std::string base = target[0] == '/' || ::getcwd(cwd, sizeof cwd) == nullptr
                               ? std::string()
                               : std::string(cwd) + "/";
  return "path:" + base + target;
}

std::string describe(const named_path& p) { return p.flag + " " + p.path; }

}  // namespace

status check_output_paths(const std::vector<named_path>& inputs,
                          const std::vector<named_path>& outputs) {
  // Inputs: each file, and for a directory (TensorRT-LLM stats) each file in it.
  std::vector<std::pair<std::string, named_path>> in_ids;
  for (const named_path& in : inputs) {
    if (in.path == "-") continue;
    struct stat st {};
    if (::stat(in.path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      if (DIR* d = ::opendir(in.path.c_str())) {
        while (const dirent* e = ::readdir(d)) {
          const std::string name = e->d_name;
          if (name == "." || name == "..") continue;
          const named_path inner{in.flag, in.path + "/" + name};
          if (auto id = identity_of(inner.path)) in_ids.emplace_back(*id, inner);
        }
        ::closedir(d);
      }
      continue;
    }
    if (auto id = identity_of(in.path)) in_ids.emplace_back(*id, in);
  }
  std::vector<std::pair<std::string, named_path>> out_ids;
  for (const named_path& out : outputs) {
    const auto id = identity_of(out.path);
    if (!id) continue;
    for (const auto& [in_id, in] : in_ids) {
      if (in_id == *id) {
        return make_error(errc::invalid_argument, position{}, "",
                          describe(out) + ": is the input " + describe(in) +
                              " (the same file); an output never overwrites an input");
      }
    }
    for (const auto& [other_id, other] : out_ids) {
      if (other_id == *id) {
        return make_error(errc::invalid_argument, position{}, "",
                          describe(out) + ": is also the output " + describe(other) +
                              " (the same file); give each output its own path");
      }
    }
    out_ids.emplace_back(*id, out);
  }
  return status::success();
}

status check_distinct_inputs(const std::vector<std::string>& paths, const std::string& flag) {
  std::vector<std::pair<std::string, const std::string*>> seen;
  for (const std::string& path : paths) {
    // A path that cannot be opened is left to the reader; only its spelling can repeat.
    struct stat st {};
    const std::string id = ::stat(path.c_str(), &st) == 0
                               ? std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)
                               : "path:" + path;
    for (const auto& [other_id, other] : seen) {
      if (other_id != id) continue;
      const std::string what = path == *other
                                   ? "listed more than once (its loads would be counted twice)"
                                   : "is the same file as " + *other +
                                         ", listed twice (its loads would be counted twice)";
      return make_error(errc::invalid_argument, position{}, flag.empty() ? path : flag + " " + path,
                        what);
    }
    seen.emplace_back(id, &path);
  }
  return status::success();
}

}  // namespace eplb
