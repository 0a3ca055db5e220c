#pragma once
// Helpers shared by the unit tests.

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/stats.hpp"

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

/// What reading stats into the CPU aggregator gave: the status, the sums (when it succeeded) and
/// the reader's summary.
struct read_outcome {
  status st;
  load_matrix sums;
  stats_read_summary summary;
};

/// Reads stats with `read` (a call of the reader with the sink and summary it is given) into a
/// fresh CPU aggregator.
template <class Read>
read_outcome aggregate_with(Read&& read) {
  read_outcome out;
  auto agg = make_aggregator("cpu");
  REQUIRE(agg.ok());
  out.st = read(**agg, &out.summary);
  if (out.st.ok()) {
    auto sums = (*agg)->finish();
    REQUIRE(sums.ok());
    out.sums = *sums;
  }
  return out;
}

/// Reads the stats text `text` (named `name` in messages) into a CPU aggregator.
inline read_outcome aggregate_stats_text(const std::string& text, const std::string& name,
                                         const stats_read_options& options) {
  return aggregate_with([&](stats_sink& sink, stats_read_summary* summary) {
    return read_vllm_stats_text(text, name, options, sink, summary);
  });
}

/// Reads the stats files `files` into a CPU aggregator.
inline read_outcome aggregate_stats_files(const std::vector<std::string>& files,
                                          const stats_read_options& options) {
  return aggregate_with([&](stats_sink& sink, stats_read_summary* summary) {
    return read_vllm_stats(files, options, sink, summary);
  });
}

}  // namespace eplb::test
