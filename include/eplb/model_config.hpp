#pragma once
// What a redundant slot costs in memory: one routed expert's weights, read from a Hugging Face
// `config.json` of the model (Qwen2-MoE, Qwen3-MoE, DeepSeek-V2/V3 field names), or given in
// bytes. Every rank holds (E + R) / EP expert slots per MoE layer instead of E / EP, so R redundant
// slots cost R / EP x (bytes of one expert) x (MoE layers) per GPU.

#include <cstdint>
#include <optional>
#include <string>

#include "eplb/error.hpp"

namespace eplb {

/// The memory of one routed expert and the layers that hold experts.
struct expert_memory {
  std::string source;  // the config file, or "--expert-bytes"
  // "qwen" (num_experts; mlp_only_layers, decoder_sparse_step) or "deepseek" (n_routed_experts;
  // first_k_dense_replace, moe_layer_freq); empty for --expert-bytes.
  std::string family;
  int num_hidden_layers = 0;  // decoder layers, dense ones included
  int moe_layers = 0;         // decoder layers with routed experts (0: unknown, use the stats')
  int num_experts = 0;        // routed experts per MoE layer (0: unknown)
  std::int64_t hidden_size = 0;
  std::int64_t moe_intermediate_size = 0;
  double bytes_per_weight = 0;
  std::string weight_type;  // "bfloat16", "fp8 (quantization_config)", "--weight-bytes", ...
  double expert_bytes = 0;  // 3 x hidden_size x moe_intermediate_size x bytes_per_weight
};

/// Reads the model's fields from the text of a config.json (`name` stands for the file in
/// messages). MoE layers: Qwen-style configs (`num_experts`) count layer i when it is not in
/// `mlp_only_layers` and (i + 1) % `decoder_sparse_step` == 0 (transformers' defaults [] and 1
/// when absent); DeepSeek-style configs (`n_routed_experts`) count i >= `first_k_dense_replace`
/// with i % `moe_layer_freq` == 0 (default 1). Bytes per weight: `weight_bytes` when given, else a
/// `quantization_config` with quant_method "fp8" gives 1 (its block scales, under 0.03%, are left
/// out), else `torch_dtype` (or `dtype`): bfloat16/float16 2, float32 4, float8 1. Returns
/// missing_field naming the file and field for a needed field that is absent, wrong_type,
/// invalid_value (unknown dtype or quantization without weight_bytes, no MoE layer) or
/// invalid_json.
result<expert_memory> parse_model_config(const std::string& json, const std::string& name,
                                         std::optional<double> weight_bytes);

/// Reads and parses a config.json file (see parse_model_config); io_error when it cannot be read.
result<expert_memory> read_model_config(const std::string& path,
                                        std::optional<double> weight_bytes);

/// Returns the extra bytes per GPU of `redundant` slots per layer at EP size `ep`:
/// redundant / ep x expert_bytes x moe_layers.
double extra_bytes_per_gpu(const expert_memory& memory, int redundant, int ep) noexcept;

/// Returns bytes in binary units with two decimals ("1.50 GiB", "36.00 MiB", "0 B").
std::string format_bytes(double bytes);

}  // namespace eplb
