#pragma once
// Helpers shared by the mapping readers (private to the library): byte offsets to
// "file:line:column" messages, a whole-document JSON parse with loader.hpp's strict parser, and
// the row checks every format applies once its rows are read.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eplb/error.hpp"
#include "eplb/loader.hpp"
#include "eplb/mapping_io.hpp"
#include "eplb/types.hpp"

namespace eplb::detail {

using json_value = loader::detail::json_value;

/// Marks "no position" for an offset argument.
inline constexpr std::size_t k_no_offset = static_cast<std::size_t>(-1);

/// Turns byte offsets of a text into "name:line:column" error messages.
class text_locator {
 public:
  text_locator(std::string_view text, std::string name) : text_(text), name_(std::move(name)) {}

  /// Returns an error at a 0-based byte offset ("name:line:column: field: what"); k_no_offset
  /// gives "name: field: what".
  error at(errc code, std::size_t offset, const std::string& field, const std::string& what) const;

  /// Returns the 1-based line and column of a byte offset.
  void line_column(std::size_t offset, std::size_t& line, std::size_t& column) const noexcept;

  /// Returns the name used in messages.
  const std::string& name() const noexcept { return name_; }

 private:
  std::string_view text_;
  std::string name_;
};

/// Returns the 0-based offset of a parsed JSON value (its column counts bytes from the start).
inline std::size_t offset_of(const json_value& v) noexcept { return v.column - 1; }

/// Parses a whole text as one JSON value with loader.hpp's strict parser; invalid_json at the
/// position of the problem (a UTF-8 byte order mark is refused like the loader does).
result<json_value> parse_json_document(std::string_view text, const text_locator& where);

/// Reads an integer JSON value (not a float, not a boolean); false otherwise.
bool json_int(const json_value& v, std::int64_t& out) noexcept;

/// Returns an error saying what a field should have been and what it is.
error type_error(const text_locator& where, const json_value& v, const std::string& field,
                 const std::string& expected);

/// One row of a mapping as read from a file: its values and where each of them is.
struct read_row {
  std::string field;       // e.g. "physical_to_logical_map[3]"
  std::size_t offset = 0;  // where the row starts
  std::vector<std::int64_t> values;
  std::vector<std::size_t> offsets;  // of every value
  /// Names value s in messages; empty: field + "[s]".
  std::function<std::string(std::size_t)> name_cell;
  /// Returns the name of value s.
  std::string cell(std::size_t s) const {
    return name_cell ? name_cell(s) : field + "[" + std::to_string(s) + "]";
  }
};

/// Reads a JSON array of equally long integer rows (at least one); `field` names it in messages
/// ("field[r][s]"). Returns wrong_type / shape_mismatch / no_records at the value's position.
result<std::vector<read_row>> read_int_rows(const json_value& v, const std::string& field,
                                            const text_locator& where);

/// Resolves E (options, then the file's `experts_in_file` when > 0, then P - R, then the largest
/// id + 1), checks R and the EP size against the options (errors at `slots_offset`), then every
/// row: ids in [0, E) and every expert present. Returns the placement of all rows.
result<placement> rows_to_placement(const std::vector<read_row>& rows, int num_slots,
                                    int experts_in_file, const mapping_read_options& options,
                                    const text_locator& where, std::size_t slots_offset);

}  // namespace eplb::detail
