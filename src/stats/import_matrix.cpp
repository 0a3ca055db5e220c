// Plain load matrices: LMDeploy statistics JSON ([num_hidden_layers][E], dense rows included) and
// CSV (one line per layer). Rows can be dropped from the top with skip_layers.
#include <simdjson.h>

#include <charconv>
#include <cmath>

#include "eplb/import.hpp"
#include "eplb/limits.hpp"
#include "stats/import_common.hpp"
#include "stats/text.hpp"

namespace eplb {

namespace ondemand = simdjson::ondemand;

result<imported_stats> import_matrix_json_text(const std::string& text, const std::string& name,
                                               const import_options& options) {
  const simdjson::padded_string padded(text);
  const detail::json_text jt{name, padded.data(), padded.size()};
  ondemand::parser parser;
  ondemand::document doc;
  if (auto err = parser.iterate(padded).get(doc); err) {
    return make_error(errc::invalid_json, position{name, 0, 0}, "", simdjson::error_message(err));
  }
  ondemand::value root;
  if (auto err = doc.get_value().get(root); err) {
    return make_error(errc::invalid_json, position{name, 1, 0}, "", simdjson::error_message(err));
  }
  // Step ranges do not apply to a matrix: it is one sample.
  detail::step_summer summer(step_range{});
  std::array<std::size_t, detail::k_max_dims> shape{};
  int ndim = 0;
  if (status s = detail::walk_nested_array(root, jt, "", 2, 2, summer, shape, ndim); !s.ok()) {
    return s.err();
  }
  if (const char* rest = nullptr; !doc.current_location().get(rest)) {
    return make_error(errc::invalid_json, position{name, 0, 0}, "",
                      "unexpected content after the top-level array");
  }
  auto out =
      detail::finish_rows(summer.rows(), options.skip_layers, stats_format::matrix_json, name);
  if (!out.ok()) return out;
  out->info.steps_total = out->info.steps_used = 1;
  return out;
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Whether a cell is written as a number at all (whatever its value): a header is text.
bool is_number(std::string_view cell) {
  double d = 0;
  auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), d);
  return !cell.empty() && p == cell.data() + cell.size() &&
         (ec == std::errc() || ec == std::errc::result_out_of_range);
}

// Parses a non-negative integer, or a decimal with an integral value ("12.0", "1e3").
bool parse_cell(std::string_view cell, std::int64_t& out, std::string& why) {
  if (cell.empty()) {
    why = "empty cell";
    return false;
  }
  const char* first = cell.data();
  const char* last = cell.data() + cell.size();
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(first, last, v);
  if (ec == std::errc() && p == last) {
    if (v < 0) {
      why = "negative count ";
      why.append(detail::excerpt(cell));
      return false;
    }
    out = v;
    return true;
  }
  double d = 0;
  auto [pd, ecd] = std::from_chars(first, last, d);
  if (ecd != std::errc() || pd != last) {
    why = "\"";
    why.append(detail::excerpt(cell));
    why.append("\" is not a number");
    return false;
  }
  if (!std::isfinite(d) || d < 0 || std::floor(d) != d || d >= 9223372036854775808.0) {
    why = "count ";
    why.append(detail::excerpt(cell));
    why.append(" is not a non-negative integer below 2^63");
    return false;
  }
  out = static_cast<std::int64_t>(d);
  return true;
}

error too_big(const position& where, std::size_t row) {
  return make_error(errc::limit_exceeded, where, detail::cat('[', row, ']'),
                    detail::cat("the matrix exceeds the limits of ", limits::max_layers, " rows, ",
                                limits::max_experts, " columns and ", limits::max_cells,
                                " cells (docs/limits.md)"));
}

}  // namespace

result<imported_stats> import_matrix_csv_text(const std::string& text, const std::string& name,
                                              const import_options& options) {
  std::vector<std::vector<std::int64_t>> rows;
  std::size_t line_start = 0;
  std::uint64_t line_no = 0;
  bool seen_content = false;
  std::uint64_t header_line = 0;
  std::vector<std::int64_t> row;
  std::string why;
  while (line_start < text.size()) {
    std::size_t line_end = text.find('\n', line_start);
    if (line_end == std::string::npos) line_end = text.size();
    ++line_no;
    std::string_view line(text.data() + line_start, line_end - line_start);
    const position where{name, line_no, line_start};
    line_start = line_end + 1;
    if (line_no == 1 && line.size() >= 3 && line.substr(0, 3) == "\xEF\xBB\xBF") {
      line.remove_prefix(3);  // UTF-8 byte-order mark written by spreadsheet tools
    }
    if (trim(line).empty()) continue;
    row.clear();
    bool numeric = true;
    std::size_t col = 0;
    std::size_t cell_start = 0;
    // Only a first line without a single number is a header: "-1", "1.5" or a 20-digit count
    // there are data, and their errors are reported, never dropped as a header.
    if (!seen_content) {
      bool any_number = false;
      for (std::size_t at = 0;;) {
        const std::size_t comma = line.find(',', at);
        any_number =
            any_number ||
            is_number(trim(line.substr(
                at, comma == std::string_view::npos ? std::string_view::npos : comma - at)));
        if (comma == std::string_view::npos) break;
        at = comma + 1;
      }
      numeric = any_number;
    }
    for (; numeric;) {
      const std::size_t comma = line.find(',', cell_start);
      const std::string_view cell =
          trim(line.substr(cell_start, comma == std::string_view::npos ? std::string_view::npos
                                                                       : comma - cell_start));
      std::int64_t v = 0;
      if (!parse_cell(cell, v, why)) {
        return make_error(errc::invalid_value, where,
                          "[" + std::to_string(rows.size()) + "][" + std::to_string(col) + "]",
                          why);
      }
      row.push_back(v);
      ++col;
      if (col > static_cast<std::size_t>(limits::max_experts)) return too_big(where, rows.size());
      if (comma == std::string_view::npos) break;
      cell_start = comma + 1;
    }
    const bool first_content = !seen_content;
    seen_content = true;
    if (!numeric) {
      header_line = line_no;
      if (first_content) continue;  // header skipped
    }
    if (rows.size() >= static_cast<std::size_t>(limits::max_layers) ||
        static_cast<std::int64_t>((rows.size() + 1) * row.size()) > limits::max_cells) {
      return too_big(where, rows.size());
    }
    if (!rows.empty() && row.size() != rows.front().size()) {
      return make_error(errc::shape_mismatch, where, "[" + std::to_string(rows.size()) + "]",
                        "has " + std::to_string(row.size()) + " columns, expected " +
                            std::to_string(rows.front().size()) + " like the first row");
    }
    rows.push_back(row);
  }
  if (rows.empty()) {
    return make_error(errc::no_records, position{name, header_line, 0}, "",
                      header_line > 0 ? "no numeric rows: the only line was read as a CSV header "
                                        "(no number in it; is this a stats file?)"
                                      : "no numeric rows");
  }
  auto out = detail::finish_rows(rows, options.skip_layers, stats_format::matrix_csv, name);
  if (!out.ok()) return out;
  out->info.steps_total = out->info.steps_used = 1;
  return out;
}

}  // namespace eplb
