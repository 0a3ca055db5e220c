#pragma once
// Helpers shared by the unit tests.

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace eplb::test {

/// A scratch directory under /tmp, removed with everything in it when the object goes away.
struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/eplb_test_XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  /// Writes `bytes` to the file `name` in the directory; returns its path.
  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string full = path + "/" + name;
    std::ofstream out(full, std::ios::binary);
    out << bytes;
    return full;
  }
};

}  // namespace eplb::test
