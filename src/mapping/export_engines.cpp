// Writers for SGLang, TensorRT-LLM and vllm-ascend (shared/formats/other-engines.md).
#include <string>
#include <vector>

#include "eplb/export.hpp"
#include "eplb/limits.hpp"
#include "mapping/export_common.hpp"

namespace eplb {

result<std::string> to_sglang_mapping(const placement& p, const topology& topo,
                                      const sglang_export_options& options) {
  if (status s = detail::check_export_input(p, topo); !s.ok()) return s.err();
  auto ids = detail::resolve_layer_ids(options.first_moe_layer, options.layer_ids, p.num_layers);
  if (!ids.ok()) return ids.err();
  const int last_id = ids->back();
  const int num_hidden = options.num_hidden_layers > 0 ? options.num_hidden_layers : last_id + 1;
  if (options.num_hidden_layers < 0 || last_id >= num_hidden) {
    return make_error(errc::invalid_argument, position{}, "num_hidden_layers",
                      "the " + std::to_string(p.num_layers) + " MoE layers end at decoder layer " +
                          std::to_string(last_id) + ", which does not fit in num_hidden_layers=" +
                          std::to_string(options.num_hidden_layers));
  }
  if (num_hidden > limits::max_decoder_layers ||
      std::int64_t{num_hidden} * p.num_slots > limits::max_cells) {
    return make_error(errc::limit_exceeded, position{}, "num_hidden_layers",
                      std::to_string(num_hidden) + " rows of " + std::to_string(p.num_slots) +
                          " slots exceed the limits of " +
                          std::to_string(limits::max_decoder_layers) + " decoder layers and " +
                          std::to_string(limits::max_cells) + " cells (docs/limits.md)");
  }
  // SGLang validates every row, dense layers included: they get the trivial row arange(P) % E.
  std::vector<std::int32_t> trivial(static_cast<std::size_t>(p.num_slots));
  for (int s = 0; s < p.num_slots; ++s) trivial[static_cast<std::size_t>(s)] = s % p.num_experts;
  std::string out = "{\"physical_to_logical_map\": [";
  std::size_t next = 0;  // next MoE layer
  for (int d = 0; d < num_hidden; ++d) {
    if (d > 0) out += ", ";
    const std::int32_t* row = trivial.data();
    if (next < ids->size() && (*ids)[next] == d) {
      row = p.row(static_cast<int>(next));
      ++next;
    }
    detail::append_list(out, row, static_cast<std::size_t>(p.num_slots));
  }
  out += "]}\n";
  return out;
}

result<std::string> to_trtllm_yaml(const placement& p, const topology& topo,
                                   const trtllm_export_options& options) {
  if (status s = detail::check_export_input(p, topo); !s.ok()) return s.err();
  auto ids = detail::resolve_layer_ids(options.first_moe_layer, options.layer_ids, p.num_layers);
  if (!ids.ok()) return ids.err();
  if (options.layer_updates_per_iter < 0) {
    return make_error(
        errc::invalid_argument, position{}, "layer_updates_per_iter",
        "must be non-negative, got " + std::to_string(options.layer_updates_per_iter));
  }
  // yaml.dump sorts keys (strings alphabetically, int layer ids numerically; ids ascend already).
  std::string out = "initial_global_assignments:\n";
  for (int l = 0; l < p.num_layers; ++l) {
    out += "  ";
    detail::append_int(out, (*ids)[static_cast<std::size_t>(l)]);
    out += ": ";
    detail::append_list(out, p.row(l), static_cast<std::size_t>(p.num_slots));
    out += '\n';
  }
  out += "layer_updates_per_iter: ";
  detail::append_int(out, options.layer_updates_per_iter);
  out += "\nnum_slots: ";
  detail::append_int(out, p.num_slots);
  out += '\n';
  return out;
}

result<std::string> to_ascend_expert_map(const placement& p, const topology& topo) {
  if (status s = detail::check_export_input(p, topo); !s.ok()) return s.err();
  const int k = topo.slots_per_rank();
  // vllm-ascend maps expert -> local slot with last-write-wins and counts distinct experts on a
  // device, so one expert twice on a rank silently breaks its map: refuse it here.
  std::vector<int> seen_at(static_cast<std::size_t>(p.num_experts), -1);
  for (int l = 0; l < p.num_layers; ++l) {
    for (int r = 0; r < topo.num_ranks; ++r) {
      std::fill(seen_at.begin(), seen_at.end(), -1);
      for (int s = r * k; s < (r + 1) * k; ++s) {
        const int e = p.at(l, s);
        if (seen_at[static_cast<std::size_t>(e)] >= 0) {
          return make_error(
              errc::invalid_value, position{},
              "layer " + std::to_string(l) + " rank " + std::to_string(r),
              "logical expert " + std::to_string(e) + " is in slots " +
                  std::to_string(seen_at[static_cast<std::size_t>(e)]) + " and " +
                  std::to_string(s) +
                  " of one device; vllm-ascend cannot load a map that repeats an expert on a "
                  "device (choose a policy that spreads replicas over ranks)");
        }
        seen_at[static_cast<std::size_t>(e)] = s;
      }
    }
  }
  std::string out = "{\"moe_layer_count\": ";
  detail::append_int(out, p.num_layers);
  out += ", \"layer_list\": [\n";
  for (int l = 0; l < p.num_layers; ++l) {
    out += "  {\"layer_id\": ";
    detail::append_int(out, l);
    out += ", \"device_count\": ";
    detail::append_int(out, topo.num_ranks);
    out += ", \"device_list\": [";
    for (int r = 0; r < topo.num_ranks; ++r) {
      if (r > 0) out += ", ";
      out += "{\"device_id\": ";
      detail::append_int(out, r);
      out += ", \"device_expert\": ";
      detail::append_list(out, p.row(l) + static_cast<std::size_t>(r) * k,
                          static_cast<std::size_t>(k));
      out += '}';
    }
    out += l + 1 < p.num_layers ? "]},\n" : "]}\n";
  }
  out += "]}\n";
  return out;
}

}  // namespace eplb
