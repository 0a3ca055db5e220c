#include "mapping/read_common.hpp"

#include <algorithm>

namespace eplb::detail {

void text_locator::line_column(std::size_t offset, std::size_t& line,
                               std::size_t& column) const noexcept {
  offset = std::min(offset, text_.size());
  const std::string_view before = text_.substr(0, offset);
  line = 1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
  const std::size_t nl = before.rfind('\n');
  column = nl == std::string_view::npos ? offset + 1 : offset - nl;
}

error text_locator::at(errc code, std::size_t offset, const std::string& field,
                       const std::string& what) const {
  std::string msg = name_;
  if (offset != k_no_offset) {
    std::size_t line = 0;
    std::size_t column = 0;
    line_column(offset, line, column);
    msg.append(":").append(std::to_string(line)).append(":").append(std::to_string(column));
  }
  msg.append(": ");
  if (!field.empty()) msg.append(field).append(": ");
  msg.append(what);
  return error{code, std::move(msg)};
}

result<json_value> parse_json_document(std::string_view text, const text_locator& where) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    return where.at(errc::invalid_json, 0, "",
                    "file starts with a UTF-8 byte order mark; write it without one");
  }
  json_value root;
  loader::detail::json_parser parser(text);
  if (!parser.parse(root)) {
    return where.at(errc::invalid_json, parser.error_column() - 1, "",
                    "invalid JSON: " + parser.error());
  }
  return root;
}

bool json_int(const json_value& v, std::int64_t& out) noexcept {
  if (v.kind != json_value::k_int) return false;
  out = v.integer;
  return true;
}

error type_error(const text_locator& where, const json_value& v, const std::string& field,
                 const std::string& expected) {
  return where.at(errc::wrong_type, offset_of(v), field,
                  "expected " + expected + ", got " + loader::detail::describe(v));
}

result<placement> rows_to_placement(const std::vector<read_row>& rows, int num_slots,
                                    int experts_in_file, const mapping_read_options& options,
                                    const text_locator& where, std::size_t slots_offset) {
  const std::string slots_text = "num_slots=" + std::to_string(num_slots);
  if (rows.empty()) return where.at(errc::no_records, k_no_offset, "", "the mapping has no layers");
  if (num_slots <= 0) {
    return where.at(errc::invalid_value, slots_offset, "", "a layer has no slots");
  }
  // E: what the caller expects, else what the file says, else P - R, else the ids seen.
  int experts = options.num_experts;
  if (experts > 0 && experts_in_file > 0 && experts != experts_in_file) {
    return where.at(errc::shape_mismatch, slots_offset, "num_experts",
                    "the file has " + std::to_string(experts_in_file) +
                        " logical experts, expected " + std::to_string(experts));
  }
  if (experts <= 0) experts = experts_in_file;
  if (experts <= 0 && options.num_redundant >= 0) {
    experts = num_slots - options.num_redundant;
    if (experts <= 0) {
      return where.at(errc::shape_mismatch, slots_offset, "",
                      slots_text + " leaves no logical experts with " +
                          std::to_string(options.num_redundant) + " redundant slots");
    }
  }
  if (experts <= 0) {
    std::int64_t top = -1;
    for (const read_row& row : rows) {
      for (const std::int64_t v : row.values) top = std::max(top, v);
    }
    // Out-of-range ids are reported below, with their position.
    experts = static_cast<int>(std::clamp<std::int64_t>(top + 1, 1, num_slots));
  }
  if (num_slots < experts) {
    return where.at(
        errc::shape_mismatch, slots_offset, "",
        slots_text + " is less than the " + std::to_string(experts) + " logical experts");
  }
  if (options.num_redundant >= 0 && num_slots - experts != options.num_redundant) {
    return where.at(errc::shape_mismatch, slots_offset, "",
                    slots_text + " holds " + std::to_string(num_slots - experts) +
                        " redundant slots for " + std::to_string(experts) +
                        " logical experts, expected " + std::to_string(options.num_redundant));
  }
  if (options.num_ranks > 0 && num_slots % options.num_ranks != 0) {
    return where.at(errc::shape_mismatch, slots_offset, "",
                    "mapping does not fit EP size " + std::to_string(options.num_ranks) + ": " +
                        slots_text + " is not divisible by it");
  }
  placement p;
  p.num_layers = static_cast<int>(rows.size());
  p.num_slots = num_slots;
  p.num_experts = experts;
  p.physical_to_logical.reserve(rows.size() * static_cast<std::size_t>(num_slots));
  std::vector<int> count(static_cast<std::size_t>(experts));
  for (const read_row& row : rows) {
    std::fill(count.begin(), count.end(), 0);
    for (std::size_t s = 0; s < row.values.size(); ++s) {
      const std::int64_t v = row.values[s];
      if (v < 0 || v >= experts) {
        return where.at(
            errc::out_of_range, row.offsets[s], row.cell(s),
            "expert " + std::to_string(v) + " out of range [0, " + std::to_string(experts) + ")");
      }
      ++count[static_cast<std::size_t>(v)];
      p.physical_to_logical.push_back(static_cast<std::int32_t>(v));
    }
    for (int e = 0; e < experts; ++e) {
      if (count[static_cast<std::size_t>(e)] == 0) {
        return where.at(errc::invalid_value, row.offset, row.field,
                        "logical expert " + std::to_string(e) + " has no slot");
      }
    }
  }
  return p;
}

result<std::vector<read_row>> read_int_rows(const json_value& v, const std::string& field,
                                            const text_locator& where) {
  if (v.kind != json_value::k_array) return type_error(where, v, field, "a list of rows");
  if (v.items.empty()) return where.at(errc::no_records, offset_of(v), field, "has no rows");
  std::vector<read_row> rows;
  rows.reserve(v.items.size());
  for (std::size_t r = 0; r < v.items.size(); ++r) {
    const json_value& row = v.items[r];
    read_row out;
    out.field = field + "[" + std::to_string(r) + "]";
    out.offset = offset_of(row);
    if (row.kind != json_value::k_array)
      return type_error(where, row, out.field, "a list of integers");
    if (r > 0 && row.items.size() != rows.front().values.size()) {
      return where.at(errc::shape_mismatch, out.offset, out.field,
                      "has " + std::to_string(row.items.size()) + " slots, expected " +
                          std::to_string(rows.front().values.size()) + " like the first row");
    }
    out.values.resize(row.items.size());
    out.offsets.resize(row.items.size());
    for (std::size_t s = 0; s < row.items.size(); ++s) {
      if (!json_int(row.items[s], out.values[s])) {
        return type_error(where, row.items[s], out.field + "[" + std::to_string(s) + "]",
                          "an integer");
      }
      out.offsets[s] = offset_of(row.items[s]);
    }
    rows.push_back(std::move(out));
  }
  return rows;
}

}  // namespace eplb::detail
