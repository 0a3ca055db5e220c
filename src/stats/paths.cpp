#include <glob.h>

#include <algorithm>
#include <string>
#include <vector>

#include "eplb/stats.hpp"
#include "stats/text.hpp"

namespace eplb {

namespace {

bool has_wildcard(const std::string& path) {
  return path.find_first_of("*?[") != std::string::npos;
}

}  // namespace

result<std::vector<std::string>> expand_stats_paths(const std::vector<std::string>& patterns) {
  std::vector<std::string> out;
  for (const auto& pattern : patterns) {
    if (!has_wildcard(pattern)) {
      out.push_back(pattern);
      continue;
    }
    glob_t matches{};
    const int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &matches);
    if (rc != 0) {
      ::globfree(&matches);
      const char* why = rc == GLOB_NOMATCH   ? "no file matches this pattern"
                        : rc == GLOB_NOSPACE ? "out of memory while expanding the pattern"
                                             : "cannot read a directory of the pattern";
      return make_error(errc::io_error, position{pattern, 0, 0}, "", why);
    }
    std::vector<std::string> found(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
    ::globfree(&matches);
    // Byte order, not the locale's collation, so every machine reads the files in the same order.
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

}  // namespace eplb
