#include "mapping/export_common.hpp"

#include <algorithm>
#include <cmath>

#include "eplb/limits.hpp"

namespace eplb::detail {

void append_json_string(std::string& out, std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

bool append_double(std::string& out, double v) {
  if (!std::isfinite(v)) return false;
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  const std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
  out += text;
  // Keep it a JSON float ("2.0", not "2") so readers see a real number type.
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
  return true;
}

status check_export_input(const placement& p, const topology& topo) {
  if (status s = validate_topology(topo); !s.ok()) return s;
  return validate_placement(p, topo);
}

namespace {

// Decoder-layer ids beyond the limit would make a file of that many rows (SGLang) or keys.
result<std::vector<int>> check_layer_ids(std::vector<int>& ids) {
  if (!ids.empty() && ids.back() >= limits::max_decoder_layers) {
    return make_error(errc::limit_exceeded, position{}, "layer ids",
                      "the MoE layers would end at decoder layer " + std::to_string(ids.back()) +
                          ", beyond the limit of " + std::to_string(limits::max_decoder_layers) +
                          " decoder layers (docs/limits.md)");
  }
  return std::move(ids);
}

}  // namespace

result<std::vector<int>> resolve_layer_ids(int first_moe_layer, const std::vector<int>& layer_ids,
                                           int num_layers) {
  const position none{};
  std::vector<int> ids;
  if (layer_ids.empty()) {
    if (first_moe_layer < 0) {
      return make_error(errc::invalid_argument, none, "first_moe_layer",
                        "must be non-negative, got " + std::to_string(first_moe_layer));
    }
    for (int l = 0; l < num_layers; ++l) {
      ids.push_back(static_cast<int>(
          std::min<std::int64_t>(std::int64_t{first_moe_layer} + l, limits::max_decoder_layers)));
    }
    return check_layer_ids(ids);
  }
  if (static_cast<int>(layer_ids.size()) != num_layers) {
    return make_error(errc::invalid_argument, none, "layer_ids",
                      "has " + std::to_string(layer_ids.size()) + " ids for " +
                          std::to_string(num_layers) + " MoE layers");
  }
  for (std::size_t i = 0; i < layer_ids.size(); ++i) {
    if (layer_ids[i] < 0 || (i > 0 && layer_ids[i] <= layer_ids[i - 1])) {
      return make_error(errc::invalid_argument, none, "layer_ids",
                        "must be non-negative and strictly ascending; entry " + std::to_string(i) +
                            " is " + std::to_string(layer_ids[i]));
    }
  }
  ids = layer_ids;
  return check_layer_ids(ids);
}

}  // namespace eplb::detail
