// The memory of one routed expert, from a Hugging Face config.json (model_config.hpp).
//
// Field names are those of the published configs: Qwen2-MoE (Qwen2-57B-A14B) and Qwen3-MoE
// (Qwen3-30B-A3B, Qwen3-235B-A22B) give `num_experts`, `moe_intermediate_size`,
// `decoder_sparse_step` and `mlp_only_layers` (Qwen2-57B-A14B's config has no `mlp_only_layers`:
// transformers' default []); DeepSeek-V2/V3 give `n_routed_experts`, `first_k_dense_replace` and
// `moe_layer_freq`, and DeepSeek-V3 ships FP8 weights under `quantization_config` while its
// `torch_dtype` says bfloat16.

#include "eplb/model_config.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "eplb/limits.hpp"
#include "stats/import_common.hpp"
#include "stats/text.hpp"

namespace eplb {

namespace {

using detail::cat;
using simdjson::dom::element;

// The config's whole-file position and the field reader every check goes through.
struct config_reader {
  const std::string& name;
  element root;

  error missing(const std::string& field, const std::string& why) const {
    return make_error(errc::missing_field, position{name, 0, 0}, field, why);
  }
  error bad(errc code, const std::string& field, const std::string& why) const {
    return make_error(code, position{name, 0, 0}, field, why);
  }
  bool has(const char* field) const {
    element e;
    return !root[field].get(e) && !e.is_null();
  }
  // An integer field in [lo, hi]; `fallback` when absent or null (nullopt: required).
  result<std::int64_t> integer(const char* field, std::int64_t lo, std::int64_t hi,
                               std::optional<std::int64_t> fallback, const char* why) const {
    element e;
    if (root[field].get(e) || e.is_null()) {
      if (fallback) return *fallback;
      return missing(field, cat("is missing; it is needed for ", why));
    }
    std::int64_t v = 0;
    if (e.get_int64().get(v)) {
      return bad(errc::wrong_type, field, cat("must be an integer (needed for ", why, ")"));
    }
    if (v < lo || v > hi) {
      return bad(errc::invalid_value, field,
                 cat("must be in [", lo, ", ", hi, "], got ", v, " (needed for ", why, ")"));
    }
    return v;
  }
};

// Bytes per weight of a dtype name as transformers writes it ("bfloat16", "torch.float16", ...).
std::optional<double> dtype_bytes(std::string name) {
  if (name.rfind("torch.", 0) == 0) name = name.substr(6);
  if (name == "bfloat16" || name == "float16" || name == "half") return 2.0;
  if (name == "float32" || name == "float") return 4.0;
  if (name.rfind("float8", 0) == 0) return 1.0;
  return std::nullopt;
}

// Bytes per weight: --weight-bytes, an fp8 quantization_config, or torch_dtype (dtype).
status weight_type(const config_reader& c, std::optional<double> weight_bytes, expert_memory& m) {
  if (weight_bytes) {
    m.bytes_per_weight = *weight_bytes;
    m.weight_type = "--weight-bytes";
    return status::success();
  }
  element q;
  if (!c.root["quantization_config"].get(q) && !q.is_null()) {
    std::string_view method;
    if (q["quant_method"].get_string().get(method)) {
      return c.bad(errc::missing_field, "quantization_config.quant_method",
                   "is missing or not a string; give --weight-bytes for a quantized model");
    }
    if (method != "fp8") {
      return c.bad(errc::invalid_value, "quantization_config.quant_method",
                   cat("\"", method,
                       "\": the bytes per weight of this quantization are not known; give "
                       "--weight-bytes (for example 0.5 for 4-bit weights)"));
    }
    m.bytes_per_weight = 1.0;
    m.weight_type = "fp8 (quantization_config)";
    return status::success();
  }
  for (const char* field : {"torch_dtype", "dtype"}) {
    element e;
    if (c.root[field].get(e) || e.is_null()) continue;
    std::string_view s;
    if (e.get_string().get(s)) return c.bad(errc::wrong_type, field, "must be a string");
    const auto bytes = dtype_bytes(std::string(s));
    if (!bytes) {
      return c.bad(errc::invalid_value, field,
                   cat("\"", s, "\": unknown weight type; give --weight-bytes"));
    }
    m.bytes_per_weight = *bytes;
    m.weight_type = std::string(s);
    return status::success();
  }
  return c.missing("torch_dtype",
                   "is missing (and there is no dtype or quantization_config); it gives the bytes "
                   "per weight, or give --weight-bytes");
}

// MoE layers of a Qwen-style config: not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0.
result<int> qwen_moe_layers(const config_reader& c, int layers) {
  auto step = c.integer("decoder_sparse_step", 1, layers, 1, "the MoE layer count");
  if (!step) return step.err();
  std::vector<bool> dense(static_cast<std::size_t>(layers), false);
  element e;
  if (!c.root["mlp_only_layers"].get(e) && !e.is_null()) {
    simdjson::dom::array list;
    if (e.get_array().get(list)) {
      return c.bad(errc::wrong_type, "mlp_only_layers", "must be an array of layer indices");
    }
    std::size_t i = 0;
    for (element item : list) {
      std::int64_t v = 0;
      if (item.get_int64().get(v) || v < 0 || v >= layers) {
        return c.bad(errc::invalid_value, cat("mlp_only_layers[", i, "]"),
                     cat("must be a layer index in [0, ", layers, ")"));
      }
      dense[static_cast<std::size_t>(v)] = true;
      ++i;
    }
  }
  int moe = 0;
  for (int l = 0; l < layers; ++l) {
    if (!dense[static_cast<std::size_t>(l)] && (l + 1) % *step == 0) ++moe;
  }
  return moe;
}

// MoE layers of a DeepSeek-style config: i >= first_k_dense_replace and i % moe_layer_freq == 0.
result<int> deepseek_moe_layers(const config_reader& c, int layers) {
  auto first = c.integer("first_k_dense_replace", 0, layers, std::nullopt,
                         "the MoE layer count (the dense layers before the first MoE layer)");
  if (!first) return first.err();
  auto freq = c.integer("moe_layer_freq", 1, layers, 1, "the MoE layer count");
  if (!freq) return freq.err();
  int moe = 0;
  for (auto l = static_cast<int>(*first); l < layers; ++l) {
    if (l % *freq == 0) ++moe;
  }
  return moe;
}

}  // namespace

result<expert_memory> parse_model_config(const std::string& json, const std::string& name,
                                         std::optional<double> weight_bytes) {
  simdjson::dom::parser parser;
  element root;
  if (auto err = parser.parse(json).get(root); err) {
    return make_error(errc::invalid_json, position{name, 0, 0}, "",
                      cat("not a JSON config: ", simdjson::error_message(err)));
  }
  if (!root.is_object()) {
    return make_error(errc::wrong_type, position{name, 0, 0}, "",
                      "a model config.json must be a JSON object");
  }
  const config_reader c{name, root};
  expert_memory m;
  m.source = name;
  const char* size_why = "the bytes of one expert";
  auto layers =
      c.integer("num_hidden_layers", 1, limits::max_layers, std::nullopt, "the MoE layer count");
  if (!layers) return layers.err();
  m.num_hidden_layers = static_cast<int>(*layers);
  auto hidden = c.integer("hidden_size", 1, std::int64_t{1} << 24, std::nullopt, size_why);
  if (!hidden) return hidden.err();
  m.hidden_size = *hidden;
  auto inter = c.integer("moe_intermediate_size", 1, std::int64_t{1} << 24, std::nullopt, size_why);
  if (!inter) return inter.err();
  m.moe_intermediate_size = *inter;
  const bool deepseek = c.has("n_routed_experts");
  if (!deepseek && !c.has("num_experts")) {
    return c.missing("num_experts",
                     "is missing (and so is n_routed_experts); the config is not that of a "
                     "Qwen-MoE or DeepSeek MoE model");
  }
  m.family = deepseek ? "deepseek" : "qwen";
  auto experts = c.integer(deepseek ? "n_routed_experts" : "num_experts", 1, limits::max_experts,
                           std::nullopt, "the expert count");
  if (!experts) return experts.err();
  m.num_experts = static_cast<int>(*experts);
  auto moe = deepseek ? deepseek_moe_layers(c, m.num_hidden_layers)
                      : qwen_moe_layers(c, m.num_hidden_layers);
  if (!moe) return moe.err();
  if (*moe == 0) {
    return c.bad(errc::invalid_value, deepseek ? "first_k_dense_replace" : "mlp_only_layers",
                 "no decoder layer has routed experts under this config");
  }
  m.moe_layers = *moe;
  if (status s = weight_type(c, weight_bytes, m); !s.ok()) return s.err();
  m.expert_bytes = 3.0 * static_cast<double>(m.hidden_size) *
                   static_cast<double>(m.moe_intermediate_size) * m.bytes_per_weight;
  return m;
}

result<expert_memory> read_model_config(const std::string& path,
                                        std::optional<double> weight_bytes) {
  auto text = detail::read_whole_file(path);
  if (!text) return text.err();
  return parse_model_config(*text, path, weight_bytes);
}

double extra_bytes_per_gpu(const expert_memory& memory, int redundant, int ep) noexcept {
  if (ep <= 0) return 0;
  return static_cast<double>(redundant) / ep * memory.expert_bytes * memory.moe_layers;
}

std::string format_bytes(double bytes) {
  if (!(bytes > 0)) return "0 B";
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.2f} {}", bytes, units[u]);
}

}  // namespace eplb
