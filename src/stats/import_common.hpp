#pragma once
// Helpers shared by the importers (private to the library): whole-file reads, line numbers from
// byte offsets, count conversion and a rectangular nested-array walker over simdjson On-Demand.

#include <simdjson.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "eplb/error.hpp"
#include "eplb/import.hpp"

namespace eplb::detail {

/// Reads a whole file; io_error naming the path when it cannot be opened or read.
result<std::string> read_whole_file(const std::string& path);

/// Returns the limit_exceeded error of a whole-file input (`path`) longer than
/// limits::max_import_file_bytes.
error whole_file_too_large(const std::string& path);

/// Reads at most max_bytes of a file; `complete` tells whether that was the whole file.
result<std::string> read_file_prefix(const std::string& path, std::size_t max_bytes,
                                     bool& complete);

/// Returns invalid_value with the way out for a torch archive (.pt, .pth), success otherwise.
status refuse_torch_archive(const std::string& path);

/// Tells the stats format of `text`, the first bytes of `path` (`complete`: all of it); `rest`
/// completes `text` to the whole input when a multi-line JSON object needs it. Errors name the
/// file, and the line where a first line is not JSON.
result<stats_format> detect_stats_format_text(std::string& text, bool complete,
                                              const std::string& path,
                                              const std::function<status(std::string&)>& rest);

/// Returns the 1-based line of a byte offset in a text.
std::uint64_t line_of(std::string_view text, std::size_t offset) noexcept;

/// Converts a JSON number to a non-negative count: integers as they are, floats only when finite
/// and integral. On failure returns false and sets `code` and `why` (the field is added by the
/// caller, so the happy path builds no strings).
bool json_count(simdjson::ondemand::value value, std::int64_t& out, errc& code, std::string& why);

/// Adds b to a, reporting an overflow error at `where`/`field`.
status checked_add(std::int64_t& a, std::int64_t b, const position& where,
                   const std::string& field);

/// Location context of a JSON text being walked: file name and the buffer the tokens point into.
struct json_text {
  std::string name;
  const char* begin = nullptr;  // first byte of the (padded) buffer
  std::size_t size = 0;
  /// Returns the position (file, line, byte) of a pointer into the buffer.
  position at(const char* p) const noexcept;
};

/// Maximum nesting the walker accepts.
inline constexpr int k_max_dims = 3;

/// Receives the leaves of a nested array: idx[0..ndim) is the index path of the value.
class leaf_visitor {
 public:
  virtual ~leaf_visitor() = default;
  /// Called once per number, in document order; returning false stops the walk with an error
  /// whose code and text the visitor sets in `code` and `why`.
  virtual bool on_leaf(const std::array<std::size_t, k_max_dims>& idx, int ndim, std::int64_t value,
                       errc& code, std::string& why) = 0;
};

/// Walks a rectangular nested array of non-negative integral numbers with min_dims..max_dims
/// dimensions; shape[0..ndim) receives its shape. `field` names the value in messages
/// ("logical_count" gives "logical_count[3][17]").
status walk_nested_array(simdjson::ondemand::value value, const json_text& text,
                         const std::string& field, int min_dims, int max_dims,
                         leaf_visitor& visitor, std::array<std::size_t, k_max_dims>& shape,
                         int& ndim);

/// Sums the leaves of a [T][L][E] or [L][E] array into a [L][E] matrix, keeping only the steps
/// (first index of a 3-D array) inside `steps`; a 2-D array is one step (index 0).
class step_summer : public leaf_visitor {
 public:
  explicit step_summer(const step_range& steps) : steps_(steps) {}
  bool on_leaf(const std::array<std::size_t, k_max_dims>& idx, int ndim, std::int64_t value,
               errc& code, std::string& why) override;
  /// Returns the summed [L][E] rows (rectangular once the walk succeeded).
  std::vector<std::vector<std::int64_t>>& rows() noexcept { return rows_; }
  /// Returns the step indices that were summed, ascending.
  const std::vector<std::int64_t>& used_steps() const noexcept { return used_; }

 private:
  step_range steps_;
  std::vector<std::vector<std::int64_t>> rows_;
  std::vector<std::int64_t> used_;
};

/// Builds an imported_stats from summed rows: drops `skip_layers` leading rows and fills the
/// layer ids; invalid_argument when nothing is left.
result<imported_stats> finish_rows(std::vector<std::vector<std::int64_t>>& rows, int skip_layers,
                                   stats_format format, const std::string& name);

}  // namespace eplb::detail
