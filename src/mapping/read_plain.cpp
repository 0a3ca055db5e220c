// Readers of eplb-gen's plain placement JSON and of vLLM's eplb_initial_mapping (through
// loader.hpp, so `check` applies exactly the rules a serving binary applies).
#include <string>
#include <vector>

#include "eplb/mapping_io.hpp"
#include "mapping/read_common.hpp"

namespace eplb {

namespace {

using detail::json_value;

result<int> int_member(const json_value& root, const char* key, std::int64_t min,
                       const detail::text_locator& where) {
  const json_value* v = root.find(key);
  if (v == nullptr) return where.at(errc::missing_field, detail::k_no_offset, key, "missing");
  std::int64_t n = 0;
  if (!detail::json_int(*v, n) || n < min || n > INT32_MAX) {
    return detail::type_error(where, *v, key,
                              min > 0 ? "a positive integer" : "a non-negative integer");
  }
  return static_cast<int>(n);
}

// Checks that a derived table (replica_count or logical_to_physical) agrees with the placement.
status check_replica_count(const json_value& v, const placement& p,
                           const detail::text_locator& where) {
  const auto counts = replica_counts(p);
  auto rows = detail::read_int_rows(v, "replica_count", where);
  if (!rows.ok()) return rows.err();
  if (rows->size() != static_cast<std::size_t>(p.num_layers)) {
    return where.at(
        errc::shape_mismatch, detail::offset_of(v), "replica_count",
        "has " + std::to_string(rows->size()) + " rows, expected " + std::to_string(p.num_layers));
  }
  for (std::size_t l = 0; l < rows->size(); ++l) {
    const detail::read_row& row = (*rows)[l];
    if (row.values.size() != static_cast<std::size_t>(p.num_experts)) {
      return where.at(errc::shape_mismatch, row.offset, row.field,
                      "has " + std::to_string(row.values.size()) + " entries, expected " +
                          std::to_string(p.num_experts));
    }
    for (std::size_t e = 0; e < row.values.size(); ++e) {
      const std::int64_t want = counts[l * static_cast<std::size_t>(p.num_experts) + e];
      if (row.values[e] != want) {
        return where.at(errc::invalid_value, row.offsets[e], row.cell(e),
                        "is " + std::to_string(row.values[e]) + " but physical_to_logical gives " +
                            std::to_string(want));
      }
    }
  }
  return status::success();
}

status check_logical_to_physical(const json_value& v, const placement& p,
                                 const detail::text_locator& where) {
  const auto l2p = logical_to_physical(p);
  const char* key = "logical_to_physical";
  if (v.kind != json_value::k_array || v.items.size() != static_cast<std::size_t>(p.num_layers)) {
    return where.at(errc::shape_mismatch, detail::offset_of(v), key,
                    "expected a list of " + std::to_string(p.num_layers) + " layers");
  }
  for (std::size_t l = 0; l < v.items.size(); ++l) {
    const json_value& layer = v.items[l];
    const std::string lf = std::string(key) + "[" + std::to_string(l) + "]";
    if (layer.kind != json_value::k_array ||
        layer.items.size() != static_cast<std::size_t>(p.num_experts)) {
      return where.at(errc::shape_mismatch, detail::offset_of(layer), lf,
                      "expected a list of " + std::to_string(p.num_experts) + " slot lists");
    }
    for (std::size_t e = 0; e < layer.items.size(); ++e) {
      const json_value& slots = layer.items[e];
      const std::string ef = lf + "[" + std::to_string(e) + "]";
      const auto& want = l2p[l][e];
      bool same = slots.kind == json_value::k_array && slots.items.size() == want.size();
      for (std::size_t i = 0; same && i < want.size(); ++i) {
        std::int64_t s = 0;
        same = detail::json_int(slots.items[i], s) && s == want[i];
      }
      if (!same) {
        return where.at(errc::invalid_value, detail::offset_of(slots), ef,
                        "does not list the ascending slots physical_to_logical gives expert " +
                            std::to_string(e));
      }
    }
  }
  return status::success();
}

}  // namespace

result<mapping_file> read_plain_json_text(std::string_view text, const std::string& name,
                                          const mapping_read_options& options) {
  const detail::text_locator where(text, name);
  auto root = detail::parse_json_document(text, where);
  if (!root.ok()) return root.err();
  if (root->kind != json_value::k_object) {
    return detail::type_error(where, *root, "", "a JSON object (eplb-gen placement)");
  }
  const json_value* format = root->find("format");
  if (format == nullptr || format->kind != json_value::k_string ||
      format->text != "eplb-gen-placement") {
    return where.at(errc::invalid_value,
                    format != nullptr ? detail::offset_of(*format) : detail::k_no_offset, "format",
                    "expected \"eplb-gen-placement\"");
  }
  auto version = int_member(*root, "version", 1, where);
  if (!version.ok()) return version.err();
  if (*version != 1) {
    return where.at(errc::invalid_value, detail::offset_of(*root->find("version")), "version",
                    "expected 1, got " + std::to_string(*version));
  }
  auto layers = int_member(*root, "num_layers", 1, where);
  if (!layers.ok()) return layers.err();
  auto experts = int_member(*root, "num_experts", 1, where);
  if (!experts.ok()) return experts.err();
  auto slots = int_member(*root, "num_slots", 1, where);
  if (!slots.ok()) return slots.err();
  auto ranks = int_member(*root, "num_ranks", 1, where);
  if (!ranks.ok()) return ranks.err();
  const std::size_t slots_at = detail::offset_of(*root->find("num_slots"));
  if (options.num_layers > 0 && *layers != options.num_layers) {
    return where.at(errc::shape_mismatch, detail::offset_of(*root->find("num_layers")),
                    "num_layers",
                    "is " + std::to_string(*layers) + ", expected " +
                        std::to_string(options.num_layers) + " MoE layers");
  }
  if (options.num_ranks > 0 && *ranks != options.num_ranks) {
    return where.at(errc::shape_mismatch, detail::offset_of(*root->find("num_ranks")), "num_ranks",
                    "mapping does not fit EP size " + std::to_string(options.num_ranks) +
                        ": it was planned for " + std::to_string(*ranks));
  }
  if (*slots % *ranks != 0) {
    return where.at(
        errc::invalid_value, slots_at, "num_slots",
        std::to_string(*slots) + " is not divisible by num_ranks=" + std::to_string(*ranks));
  }
  const json_value* table = root->find("physical_to_logical");
  if (table == nullptr) {
    return where.at(errc::missing_field, detail::k_no_offset, "physical_to_logical", "missing");
  }
  auto rows = detail::read_int_rows(*table, "physical_to_logical", where);
  if (!rows.ok()) return rows.err();
  if (rows->size() != static_cast<std::size_t>(*layers)) {
    return where.at(errc::shape_mismatch, detail::offset_of(*table), "physical_to_logical",
                    "has " + std::to_string(rows->size()) + " layers, num_layers is " +
                        std::to_string(*layers));
  }
  if (rows->front().values.size() != static_cast<std::size_t>(*slots)) {
    return where.at(errc::shape_mismatch, rows->front().offset, rows->front().field,
                    "has " + std::to_string(rows->front().values.size()) + " slots, num_slots is " +
                        std::to_string(*slots));
  }
  auto place = detail::rows_to_placement(*rows, *slots, *experts, options, where, slots_at);
  if (!place.ok()) return place.err();
  if (const json_value* v = root->find("replica_count"); v != nullptr) {
    if (status s = check_replica_count(*v, *place, where); !s.ok()) return s.err();
  }
  if (const json_value* v = root->find("logical_to_physical"); v != nullptr) {
    if (status s = check_logical_to_physical(*v, *place, where); !s.ok()) return s.err();
  }
  mapping_file out;
  out.format = mapping_format::json;
  out.place = std::move(*place);
  out.num_ranks = *ranks;
  if (const json_value* meta = root->find("meta"); meta != nullptr) {
    if (const json_value* policy = meta->find("policy");
        policy != nullptr && policy->kind == json_value::k_string) {
      out.policy = policy->text;
    }
  }
  return out;
}

result<mapping_file> read_vllm_mapping_text(std::string_view text, const std::string& name,
                                            const mapping_read_options& options) {
  loader::expected_topology expect;
  expect.num_layers = options.num_layers;
  expect.num_experts = options.num_experts;
  expect.num_ranks = options.num_ranks;
  expect.num_redundant = options.num_redundant;
  const loader::load_result r = loader::parse_mapping(text, expect, name);
  if (!r.ok()) {
    const bool syntax = r.error.message.find(": invalid JSON: ") != std::string::npos;
    return error{syntax ? errc::invalid_json : errc::invalid_value, r.error.message};
  }
  mapping_file out;
  out.format = mapping_format::vllm;
  out.place.num_layers = r.value.num_layers();
  out.place.num_slots = r.value.num_slots();
  out.place.num_experts = r.value.num_experts();
  const std::vector<int> flat = r.value.flat_physical_to_logical();
  out.place.physical_to_logical.assign(flat.begin(), flat.end());
  out.num_ranks = options.num_ranks;
  return out;
}

}  // namespace eplb
