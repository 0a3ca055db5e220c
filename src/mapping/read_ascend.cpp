// Reader of the vllm-ascend expert map JSON (shared/formats/other-engines.md section 3): layers
// and devices are read by position, every device lists the same number of experts, and no
// logical expert may appear twice on one device (vllm-ascend's expert -> local slot map would
// silently lose one of them).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "eplb/mapping_io.hpp"
#include "mapping/read_common.hpp"

namespace eplb {

namespace {

using detail::json_value;

// Returns the member `key` of `obj` as a non-negative int, or an error naming `field`.
result<int> count_field(const json_value& obj, const char* key, const std::string& field,
                        const detail::text_locator& where) {
  const json_value* v = obj.find(key);
  const std::string name = field.empty() ? std::string(key) : field + "." + key;
  if (v == nullptr) {
    return where.at(errc::missing_field, detail::offset_of(obj), name, "missing");
  }
  std::int64_t n = 0;
  if (!detail::json_int(*v, n) || n < 0 || n > INT32_MAX) {
    return detail::type_error(where, *v, name, "a non-negative integer");
  }
  return static_cast<int>(n);
}

}  // namespace

result<mapping_file> read_ascend_expert_map_text(std::string_view text, const std::string& name,
                                                 const mapping_read_options& options) {
  const detail::text_locator where(text, name);
  auto root = detail::parse_json_document(text, where);
  if (!root.ok()) return root.err();
  if (root->kind != json_value::k_object) {
    return detail::type_error(where, *root, "", "a JSON object with moe_layer_count, layer_list");
  }
  auto layer_count = count_field(*root, "moe_layer_count", "", where);
  if (!layer_count.ok()) return layer_count.err();
  const json_value* list = root->find("layer_list");
  if (list == nullptr) {
    return where.at(errc::missing_field, detail::k_no_offset, "layer_list", "missing");
  }
  if (list->kind != json_value::k_array) {
    return detail::type_error(where, *list, "layer_list", "a list of layers");
  }
  if (list->items.size() != static_cast<std::size_t>(*layer_count)) {
    return where.at(errc::shape_mismatch, detail::offset_of(*list), "layer_list",
                    "has " + std::to_string(list->items.size()) +
                        " layers but moe_layer_count is " + std::to_string(*layer_count));
  }
  if (*layer_count == 0) {
    return where.at(errc::no_records, detail::offset_of(*list), "layer_list", "has no layers");
  }
  if (options.num_layers > 0 && *layer_count != options.num_layers) {
    return where.at(errc::shape_mismatch, detail::offset_of(root->items.front()), "moe_layer_count",
                    "is " + std::to_string(*layer_count) + ", expected " +
                        std::to_string(options.num_layers) + " MoE layers");
  }

  int ranks = -1;
  int per_rank = -1;
  std::size_t ranks_at = detail::k_no_offset;
  std::vector<detail::read_row> rows;
  std::vector<int> seen_at;  // per expert id: the local slot it was last seen in on this device
  for (std::size_t l = 0; l < list->items.size(); ++l) {
    const json_value& layer = list->items[l];
    const std::string lf = "layer_list[" + std::to_string(l) + "]";
    if (layer.kind != json_value::k_object)
      return detail::type_error(where, layer, lf, "an object");
    auto device_count = count_field(layer, "device_count", lf, where);
    if (!device_count.ok()) return device_count.err();
    const json_value* devices = layer.find("device_list");
    const std::string df = lf + ".device_list";
    if (devices == nullptr) {
      return where.at(errc::missing_field, detail::offset_of(layer), df, "missing");
    }
    if (devices->kind != json_value::k_array) {
      return detail::type_error(where, *devices, df, "a list of devices");
    }
    if (devices->items.size() != static_cast<std::size_t>(*device_count) || *device_count == 0) {
      return where.at(errc::shape_mismatch, detail::offset_of(*devices), df,
                      "has " + std::to_string(devices->items.size()) +
                          " devices but device_count is " + std::to_string(*device_count));
    }
    if (ranks < 0) {
      ranks = *device_count;
      ranks_at = detail::offset_of(*layer.find("device_count"));
      if (options.num_ranks > 0 && ranks != options.num_ranks) {
        return where.at(errc::shape_mismatch, ranks_at, lf + ".device_count",
                        "mapping does not fit EP size " + std::to_string(options.num_ranks) +
                            ": it has " + std::to_string(ranks) + " devices");
      }
    } else if (*device_count != ranks) {
      return where.at(
          errc::shape_mismatch, detail::offset_of(*layer.find("device_count")),
          lf + ".device_count",
          "is " + std::to_string(*device_count) + ", layer 0 has " + std::to_string(ranks));
    }
    std::fill(seen_at.begin(), seen_at.end(), -1);
    detail::read_row row;
    row.field = lf;
    row.offset = detail::offset_of(layer);
    row.name_cell = [df, &per_rank](std::size_t s) {
      const auto k = static_cast<std::size_t>(per_rank);
      return df + "[" + std::to_string(s / k) + "].device_expert[" + std::to_string(s % k) + "]";
    };
    for (std::size_t d = 0; d < devices->items.size(); ++d) {
      const json_value& device = devices->items[d];
      const std::string devf = df + "[" + std::to_string(d) + "]";
      if (device.kind != json_value::k_object) {
        return detail::type_error(where, device, devf, "an object");
      }
      // Devices are read by position: a device_id that says otherwise is a mistake.
      if (const json_value* id = device.find("device_id"); id != nullptr) {
        std::int64_t v = 0;
        if (!detail::json_int(*id, v) || v != static_cast<std::int64_t>(d)) {
          return where.at(errc::invalid_value, detail::offset_of(*id), devf + ".device_id",
                          "is " + loader::detail::describe(*id) + " at position " +
                              std::to_string(d) + "; vllm-ascend reads devices by position");
        }
      }
      const json_value* experts = device.find("device_expert");
      const std::string ef = devf + ".device_expert";
      if (experts == nullptr) {
        return where.at(errc::missing_field, detail::offset_of(device), ef, "missing");
      }
      if (experts->kind != json_value::k_array) {
        return detail::type_error(where, *experts, ef, "a list of expert ids");
      }
      const int k = static_cast<int>(experts->items.size());
      if (per_rank < 0) per_rank = k;
      if (k != per_rank || k == 0) {
        return where.at(errc::shape_mismatch, detail::offset_of(*experts), ef,
                        "has " + std::to_string(k) + " experts, expected " +
                            std::to_string(per_rank) + " like the first device (and at least 1)");
      }
      const int device_start = static_cast<int>(row.values.size());
      for (std::size_t j = 0; j < experts->items.size(); ++j) {
        const json_value& cell = experts->items[j];
        std::int64_t v = 0;
        const std::string cf = ef + "[" + std::to_string(j) + "]";
        if (!detail::json_int(cell, v)) return detail::type_error(where, cell, cf, "an integer");
        // Out-of-range ids are reported later with the topology; only plausible ids are tracked.
        if (v >= 0 && v < (std::int64_t{1} << 24)) {
          if (seen_at.size() <= static_cast<std::size_t>(v)) {
            seen_at.resize(static_cast<std::size_t>(v) + 1, -1);
          }
          int& prev = seen_at[static_cast<std::size_t>(v)];
          if (prev >= device_start) {
            return where.at(errc::invalid_value, detail::offset_of(cell), cf,
                            "logical expert " + std::to_string(v) + " is already in local slot " +
                                std::to_string(prev - device_start) +
                                " of this device; vllm-ascend cannot load a map that repeats an "
                                "expert on a device");
          }
          prev = static_cast<int>(row.values.size());
        }
        row.values.push_back(v);
        row.offsets.push_back(detail::offset_of(cell));
      }
    }
    rows.push_back(std::move(row));
  }
  auto place = detail::rows_to_placement(rows, ranks * per_rank, 0, options, where, ranks_at);
  if (!place.ok()) return place.err();
  mapping_file out;
  out.format = mapping_format::ascend;
  out.place = std::move(*place);
  out.num_ranks = ranks;
  return out;
}

}  // namespace eplb
