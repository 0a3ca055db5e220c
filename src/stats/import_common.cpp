#include "stats/import_common.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>

#include "eplb/limits.hpp"
#include "stats/text.hpp"

namespace eplb::detail {

namespace ondemand = simdjson::ondemand;

result<std::string> read_whole_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return make_error(errc::io_error, position{path, 0, 0}, "",
                      std::string("cannot open: ") + std::strerror(errno));
  }
  std::string data;
  char chunk[1 << 16];
  bool too_big = false;
  for (;;) {
    const std::size_t n = std::fread(chunk, 1, sizeof chunk, f);
    data.append(chunk, n);
    if (n < sizeof chunk) break;
    if (data.size() > limits::max_import_file_bytes) {
      too_big = true;
      break;
    }
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return make_error(errc::io_error, position{path, 0, 0}, "", "read error");
  if (too_big) return whole_file_too_large(path);
  return data;
}

error whole_file_too_large(const std::string& path) {
  return make_error(errc::limit_exceeded, position{path, 0, 0}, "",
                    cat("larger than the limit of ", limits::max_import_file_bytes,
                        " bytes for a whole-file input (docs/limits.md)"));
}

result<std::string> read_file_prefix(const std::string& path, std::size_t max_bytes,
                                     bool& complete) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return make_error(errc::io_error, position{path, 0, 0}, "",
                      std::string("cannot open: ") + std::strerror(errno));
  }
  std::string data(max_bytes + 1, '\0');
  const std::size_t n = std::fread(data.data(), 1, data.size(), f);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return make_error(errc::io_error, position{path, 0, 0}, "", "read error");
  complete = n <= max_bytes;
  data.resize(std::min(n, max_bytes));
  return data;
}

std::uint64_t line_of(std::string_view text, std::size_t offset) noexcept {
  offset = std::min(offset, text.size());
  return 1 + static_cast<std::uint64_t>(std::count(text.begin(), text.begin() + offset, '\n'));
}

position json_text::at(const char* p) const noexcept {
  position pos;
  pos.file = name;
  if (p == nullptr || begin == nullptr || p < begin) return pos;
  const std::size_t off = std::min(static_cast<std::size_t>(p - begin), size);
  pos.line = line_of(std::string_view(begin, size), off);
  pos.byte = off;
  return pos;
}

bool json_count(ondemand::value value, std::int64_t& out, errc& code, std::string& why) {
  ondemand::number num;
  if (auto err = value.get_number().get(num); err) {
    code = err == simdjson::INCORRECT_TYPE ? errc::wrong_type : errc::invalid_json;
    why = err == simdjson::INCORRECT_TYPE
              ? std::string("expected a number")
              : std::string("not a valid number (") + simdjson::error_message(err) + ")";
    return false;
  }
  switch (num.get_number_type()) {
    case ondemand::number_type::signed_integer: {
      const std::int64_t v = num.get_int64();
      if (v < 0) {
        code = errc::invalid_value;
        why = "negative count " + std::to_string(v);
        return false;
      }
      out = v;
      return true;
    }
    case ondemand::number_type::unsigned_integer:
      code = errc::out_of_range;
      why = "count " + std::to_string(num.get_uint64()) + " exceeds 2^63-1";
      return false;
    default: {
      const double d = num.get_double();
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      if (!std::isfinite(d) || d < 0 || std::floor(d) != d) {
        code = errc::invalid_value;
        why = std::string("count ") + buf +
              (d < 0 ? " is negative" : " is not a finite non-negative integer");
        return false;
      }
      if (d >= 9223372036854775808.0) {
        code = errc::out_of_range;
        why = std::string("count ") + buf + " exceeds 2^63-1";
        return false;
      }
      out = static_cast<std::int64_t>(d);
      return true;
    }
  }
}

status checked_add(std::int64_t& a, std::int64_t b, const position& where,
                   const std::string& field) {
  if (__builtin_add_overflow(a, b, &a)) {
    return make_error(errc::overflow, where, field, "sum of counts exceeds 2^63-1");
  }
  return status::success();
}

namespace {

struct walker {
  const json_text& text;
  int min_dims;
  int max_dims;
  leaf_visitor& visitor;
  std::array<std::size_t, k_max_dims>& shape;
  std::array<bool, k_max_dims> shape_known{};
  std::array<std::size_t, k_max_dims> idx{};
  int leaf_depth = -1;
  std::string base;

  std::string field_name(int depth) const {
    std::string f = base;
    for (int d = 0; d < depth; ++d) {
      f += '[';
      f += std::to_string(idx[static_cast<std::size_t>(d)]);
      f += ']';
    }
    return f;
  }

  status walk(ondemand::value v, int depth) {
    const char* where_ptr = v.raw_json_token().data();
    ondemand::json_type type;
    if (auto err = v.type().get(type); err) {
      return make_error(errc::invalid_json, text.at(where_ptr), field_name(depth),
                        simdjson::error_message(err));
    }
    if (type == ondemand::json_type::array) {
      if (depth >= max_dims || (leaf_depth >= 0 && depth >= leaf_depth)) {
        return make_error(errc::shape_mismatch, text.at(where_ptr), field_name(depth),
                          "expected a number, got an array (at most " +
                              std::to_string(leaf_depth >= 0 ? leaf_depth : max_dims) +
                              " dimensions)");
      }
      ondemand::array arr;
      if (auto err = v.get_array().get(arr); err) {
        return make_error(errc::invalid_json, text.at(where_ptr), field_name(depth),
                          simdjson::error_message(err));
      }
      std::size_t n = 0;
      for (auto elem : arr) {
        ondemand::value ev;
        if (auto err = std::move(elem).get(ev); err) {
          idx[static_cast<std::size_t>(depth)] = n;
          return make_error(errc::invalid_json, text.at(where_ptr), field_name(depth + 1),
                            simdjson::error_message(err));
        }
        idx[static_cast<std::size_t>(depth)] = n;
        if (status s = walk(ev, depth + 1); !s.ok()) return s;
        ++n;
      }
      const auto d = static_cast<std::size_t>(depth);
      if (n == 0) {
        return make_error(errc::shape_mismatch, text.at(where_ptr), field_name(depth),
                          "empty array");
      }
      if (!shape_known[d]) {
        shape_known[d] = true;
        shape[d] = n;
      } else if (shape[d] != n) {
        return make_error(errc::shape_mismatch, text.at(where_ptr), field_name(depth),
                          "has " + std::to_string(n) + " elements, expected " +
                              std::to_string(shape[d]) + " like the first one");
      }
      return status::success();
    }
    if (type == ondemand::json_type::number) {
      if (leaf_depth < 0) {
        if (depth < min_dims) {
          return make_error(errc::shape_mismatch, text.at(where_ptr), field_name(depth),
                            "expected an array of at least " + std::to_string(min_dims) +
                                " dimensions, got a number");
        }
        leaf_depth = depth;
      } else if (depth != leaf_depth) {
        return make_error(errc::shape_mismatch, text.at(where_ptr), field_name(depth),
                          "expected an array, got a number");
      }
      std::int64_t value = 0;
      errc code = errc::ok;
      std::string why;
      if (!json_count(v, value, code, why) || !visitor.on_leaf(idx, depth, value, code, why)) {
        return make_error(code, text.at(where_ptr), field_name(depth), why);
      }
      return status::success();
    }
    return make_error(errc::wrong_type, text.at(where_ptr), field_name(depth),
                      depth == 0 ? "expected an array" : "expected a number or an array");
  }
};

}  // namespace

status walk_nested_array(ondemand::value value, const json_text& text, const std::string& field,
                         int min_dims, int max_dims, leaf_visitor& visitor,
                         std::array<std::size_t, k_max_dims>& shape, int& ndim) {
  walker w{text, min_dims, std::min(max_dims, k_max_dims), visitor, shape, {}, {}, -1, field};
  if (status s = w.walk(value, 0); !s.ok()) return s;
  ndim = w.leaf_depth;
  return status::success();
}

bool step_summer::on_leaf(const std::array<std::size_t, k_max_dims>& idx, int ndim,
                          std::int64_t value, errc& code, std::string& why) {
  std::size_t step = 0;
  std::size_t layer = idx[0];
  std::size_t expert = idx[1];
  if (ndim == 3) {
    step = idx[0];
    layer = idx[1];
    expert = idx[2];
  }
  // docs/limits.md; the rows include leading dense layers that skip_layers drops later.
  if (layer >= static_cast<std::size_t>(limits::max_layers) ||
      expert >= static_cast<std::size_t>(limits::max_experts) ||
      static_cast<std::int64_t>((layer + 1) * (expert + 1)) > limits::max_cells) {
    code = errc::limit_exceeded;
    why = cat("the matrix exceeds the limits of ", limits::max_layers, " layers, ",
              limits::max_experts, " experts and ", limits::max_cells, " cells (docs/limits.md)");
    return false;
  }
  const bool take = steps_.contains(static_cast<std::int64_t>(step));
  // Rows grow while the first step is walked; the walker enforces a rectangular shape.
  if (layer >= rows_.size()) rows_.resize(layer + 1);
  auto& row = rows_[layer];
  if (expert >= row.size()) row.resize(expert + 1, 0);
  if (take) {
    if (used_.empty() || used_.back() != static_cast<std::int64_t>(step)) {
      used_.push_back(static_cast<std::int64_t>(step));
    }
    if (__builtin_add_overflow(row[expert], value, &row[expert])) {
      code = errc::overflow;
      why = "sum over steps exceeds 2^63-1";
      return false;
    }
  }
  return true;
}

result<imported_stats> finish_rows(std::vector<std::vector<std::int64_t>>& rows, int skip_layers,
                                   stats_format format, const std::string& name) {
  const position whole{name, 0, 0};
  if (skip_layers < 0) {
    return make_error(errc::invalid_argument, whole, "skip_layers",
                      "must be non-negative, got " + std::to_string(skip_layers));
  }
  if (static_cast<std::size_t>(skip_layers) >= rows.size()) {
    return make_error(errc::invalid_value, whole, "skip_layers",
                      "skipping " + std::to_string(skip_layers) +
                          " leading rows leaves none of the " + std::to_string(rows.size()) +
                          " rows");
  }
  imported_stats out;
  const std::size_t num_layers = rows.size() - static_cast<std::size_t>(skip_layers);
  const std::size_t num_experts = rows.front().size();
  out.load.resize(static_cast<Eigen::Index>(num_layers), static_cast<Eigen::Index>(num_experts));
  for (std::size_t l = 0; l < num_layers; ++l) {
    const auto& row = rows[l + static_cast<std::size_t>(skip_layers)];
    for (std::size_t e = 0; e < num_experts; ++e) {
      out.load(static_cast<Eigen::Index>(l), static_cast<Eigen::Index>(e)) = row[e];
    }
    out.info.layer_ids.push_back(skip_layers + static_cast<int>(l));
  }
  while (out.info.leading_zero_rows < out.load.rows() &&
         (out.load.row(out.info.leading_zero_rows).array() == 0).all()) {
    ++out.info.leading_zero_rows;
  }
  out.info.format = format;
  out.info.files.push_back(name);
  out.info.num_layers = static_cast<int>(num_layers);
  out.info.num_experts = static_cast<int>(num_experts);
  return out;
}

}  // namespace eplb::detail
