// The safetensors container (huggingface/safetensors): u64 LE header length, JSON header, raw
// little-endian row-major data. Parsed here with bounds checks on every offset, so a truncated or
// hostile file gives an error instead of an out-of-bounds read.
#include <simdjson.h>

#include <cmath>
#include <cstring>

#include "eplb/import.hpp"
#include "stats/import_common.hpp"

namespace eplb {

namespace {

std::uint64_t load_le(const unsigned char* p, int size) noexcept {
  std::uint64_t v = 0;
  for (int i = size - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Bytes per element of a dtype; 0 for dtypes this reader does not know.
int dtype_size(std::string_view dtype) noexcept {
  if (dtype == "I64" || dtype == "U64" || dtype == "F64") return 8;
  if (dtype == "I32" || dtype == "U32" || dtype == "F32") return 4;
  if (dtype == "I16" || dtype == "U16" || dtype == "F16" || dtype == "BF16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" ||
      dtype == "F8_E5M2") {
    return 1;
  }
  return 0;
}

}  // namespace

result<safetensors_file> parse_safetensors(std::string bytes, const std::string& name) {
  const position whole{name, 0, 0};
  if (bytes.size() < 8) {
    return make_error(
        errc::invalid_value, whole, "header",
        "file has " + std::to_string(bytes.size()) + " bytes, fewer than the 8-byte header length");
  }
  const auto* raw = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::uint64_t header_len = load_le(raw, 8);
  if (header_len > k_safetensors_max_header) {
    return make_error(errc::limit_exceeded, whole, "header",
                      "header length " + std::to_string(header_len) + " exceeds the limit of " +
                          std::to_string(k_safetensors_max_header) + " bytes");
  }
  if (header_len > bytes.size() - 8) {
    return make_error(errc::invalid_value, whole, "header",
                      "header length " + std::to_string(header_len) + " runs past the end of the " +
                          std::to_string(bytes.size()) + "-byte file");
  }
  const std::uint64_t data_size = bytes.size() - 8 - header_len;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(bytes.data() + 8, static_cast<std::size_t>(header_len)).get(root);
      err) {
    return make_error(errc::invalid_json, whole, "header", simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) {
    return make_error(errc::wrong_type, whole, "header", "the JSON header is not an object");
  }
  safetensors_file out;
  out.name = name;
  out.data_start = 8 + header_len;
  for (auto [key, value] : obj) {
    if (key == "__metadata__") continue;
    const std::string field(key);
    safetensors_entry e;
    e.name = field;
    std::string_view dtype;
    if (value["dtype"].get_string().get(dtype)) {
      return make_error(errc::missing_field, whole, field + ".dtype", "missing or not a string");
    }
    e.dtype = std::string(dtype);
    simdjson::dom::array shape;
    if (value["shape"].get_array().get(shape)) {
      return make_error(errc::missing_field, whole, field + ".shape", "missing or not an array");
    }
    std::uint64_t numel = 1;
    for (auto dim : shape) {
      std::uint64_t d = 0;
      if (dim.get_uint64().get(d)) {
        return make_error(errc::wrong_type, whole, field + ".shape",
                          "dimensions must be non-negative integers");
      }
      if (__builtin_mul_overflow(numel, d, &numel)) {
        return make_error(errc::out_of_range, whole, field + ".shape", "element count overflows");
      }
      e.shape.push_back(d);
    }
    simdjson::dom::array offsets;
    if (value["data_offsets"].get_array().get(offsets) || offsets.size() != 2 ||
        offsets.at(0).get_uint64().get(e.begin) || offsets.at(1).get_uint64().get(e.end)) {
      return make_error(errc::missing_field, whole, field + ".data_offsets",
                        "missing or not [begin, end] with non-negative integers");
    }
    if (e.begin > e.end || e.end > data_size) {
      return make_error(errc::out_of_range, whole, field + ".data_offsets",
                        "[" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                            "] is not a range inside the " + std::to_string(data_size) +
                            "-byte data section");
    }
    const int elem = dtype_size(e.dtype);
    std::uint64_t expected = 0;
    if (elem != 0 && (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(elem), &expected) ||
                      expected != e.end - e.begin)) {
      return make_error(errc::shape_mismatch, whole, field + ".data_offsets",
                        "covers " + std::to_string(e.end - e.begin) + " bytes but " +
                            std::to_string(numel) + " elements of " + e.dtype + " need " +
                            std::to_string(numel * static_cast<std::uint64_t>(elem)));
    }
    out.entries.push_back(std::move(e));
  }
  out.bytes = std::move(bytes);
  return out;
}

result<safetensors_file> read_safetensors(const std::string& path) {
  auto bytes = detail::read_whole_file(path);
  if (!bytes.ok()) return bytes.err();
  return parse_safetensors(std::move(*bytes), path);
}

result<std::vector<std::int64_t>> safetensors_to_int64(const safetensors_file& file,
                                                       const safetensors_entry& entry) {
  const position whole{file.name, 0, 0};
  const int elem = dtype_size(entry.dtype);
  const bool is_int = entry.dtype[0] == 'I' || entry.dtype[0] == 'U';
  const bool is_float = entry.dtype == "F32" || entry.dtype == "F64";
  if (elem == 0 || !(is_int || is_float)) {
    return make_error(errc::wrong_type, whole, entry.name,
                      "dtype " + entry.dtype + " is not an integer, F32 or F64 dtype");
  }
  if (entry.end > file.bytes.size() - file.data_start || entry.begin > entry.end ||
      (entry.end - entry.begin) % static_cast<std::uint64_t>(elem) != 0) {
    return make_error(errc::out_of_range, whole, entry.name, "data offsets outside the file");
  }
  const auto* p =
      reinterpret_cast<const unsigned char*>(file.bytes.data()) + file.data_start + entry.begin;
  const std::size_t n = (entry.end - entry.begin) / static_cast<std::uint64_t>(elem);
  std::vector<std::int64_t> out(n);
  for (std::size_t i = 0; i < n; ++i, p += elem) {
    const std::uint64_t bits = load_le(p, elem);
    if (entry.dtype[0] == 'U') {
      if (bits > static_cast<std::uint64_t>(INT64_MAX)) {
        return make_error(errc::out_of_range, whole, entry.name + "[" + std::to_string(i) + "]",
                          "value exceeds 2^63-1");
      }
      out[i] = static_cast<std::int64_t>(bits);
    } else if (entry.dtype[0] == 'I') {
      // Sign-extend from the element width.
      const int shift = 64 - 8 * elem;
      out[i] = static_cast<std::int64_t>(bits << shift) >> shift;
    } else {
      double d = 0;
      if (elem == 4) {
        float f = 0;
        const auto b32 = static_cast<std::uint32_t>(bits);
        std::memcpy(&f, &b32, sizeof f);
        d = f;
      } else {
        std::memcpy(&d, &bits, sizeof d);
      }
      if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) >= 9223372036854775808.0) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.9g", d);
        return make_error(errc::invalid_value, whole, entry.name + "[" + std::to_string(i) + "]",
                          std::string(entry.dtype) + " value " + buf + " is not an integer");
      }
      out[i] = static_cast<std::int64_t>(d);
    }
  }
  return out;
}

}  // namespace eplb
