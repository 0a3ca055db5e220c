// Reader of SGLang's `--init-expert-location` JSON (shared/formats/other-engines.md section 1).
#include <string>
#include <vector>

#include "eplb/mapping_io.hpp"
#include "mapping/read_common.hpp"

namespace eplb {

namespace {
constexpr const char* k_key = "physical_to_logical_map";
}  // namespace

result<mapping_file> read_sglang_mapping_text(std::string_view text, const std::string& name,
                                              const mapping_read_options& options) {
  using detail::json_value;
  const detail::text_locator where(text, name);
  auto root = detail::parse_json_document(text, where);
  if (!root.ok()) return root.err();
  if (root->kind != json_value::k_object) {
    return detail::type_error(where, *root, "", "a JSON object {\"physical_to_logical_map\": ...}");
  }
  // SGLang passes the object as keyword arguments to init_by_mapping: any other key fails there.
  for (std::size_t i = 0; i < root->keys.size(); ++i) {
    const std::string& key = root->keys[i];
    if (key == k_key) continue;
    const std::string what =
        key == "logical_count"
            ? "this is an SGLang stats file (logical_count), not a mapping; pass it to --stats"
            : "unexpected key; SGLang's init_by_mapping accepts only physical_to_logical_map";
    return where.at(errc::invalid_value, detail::offset_of(root->items[i]), key, what);
  }
  const json_value* map = root->find(k_key);
  if (map == nullptr) {
    return where.at(errc::missing_field, detail::k_no_offset, k_key, "missing");
  }
  auto rows = detail::read_int_rows(*map, k_key, where);
  if (!rows.ok()) return rows.err();
  const int num_rows = static_cast<int>(rows->size());
  if (options.num_hidden_layers > 0 && num_rows != options.num_hidden_layers) {
    return where.at(errc::shape_mismatch, detail::offset_of(*map), k_key,
                    "has " + std::to_string(num_rows) + " rows, expected one per decoder layer (" +
                        std::to_string(options.num_hidden_layers) + ")");
  }
  // The MoE layers: L rows from first_moe_layer; by default the last L rows (dense layers come
  // first in the models SGLang balances), or every row.
  const int layers_given = options.num_layers;
  const int first =
      options.first_moe_layer.value_or(layers_given > 0 ? num_rows - layers_given : 0);
  const int layers = layers_given > 0 ? layers_given : num_rows - first;
  if (first < 0 || layers <= 0 || first + layers > num_rows) {
    return where.at(errc::shape_mismatch, detail::offset_of(*map), k_key,
                    "has " + std::to_string(num_rows) + " rows, too few for " +
                        std::to_string(layers_given > 0 ? layers_given : 1) +
                        " MoE layers from row " + std::to_string(first));
  }
  // SGLang validates every row, dense ones included.
  const int slots = static_cast<int>(rows->front().values.size());
  auto all = detail::rows_to_placement(*rows, slots, 0, options, where, detail::offset_of(*map));
  if (!all.ok()) return all.err();
  mapping_file out;
  out.format = mapping_format::sglang;
  out.place.num_layers = layers;
  out.place.num_slots = slots;
  out.place.num_experts = all->num_experts;
  out.place.physical_to_logical.assign(
      all->physical_to_logical.begin() + static_cast<std::ptrdiff_t>(first) * slots,
      all->physical_to_logical.begin() + static_cast<std::ptrdiff_t>(first + layers) * slots);
  for (int l = 0; l < layers; ++l) out.layer_ids.push_back(first + l);
  out.num_hidden_layers = num_rows;
  out.num_ranks = options.num_ranks;
  return out;
}

}  // namespace eplb
