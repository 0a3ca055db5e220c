#pragma once
// Mapping output for engines other than vLLM: SGLang `--init-expert-location` JSON, TensorRT-LLM
// load-balancer YAML, vllm-ascend expert map JSON, and eplb-gen's own plain JSON with provenance.
// Every function validates the placement against the topology first and returns the file
// content; the caller writes it (write_file_atomic in mapping.hpp). Output is byte-deterministic.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "eplb/error.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// Decoder-layer ids of the MoE layers, for formats keyed by absolute layer id.
struct layer_id_options {
  /// Decoder-layer id of MoE layer 0; MoE layer l is first_moe_layer + l (DeepSeek-V3: 3).
  int first_moe_layer = 0;
  /// When not empty: the decoder-layer id of every MoE layer (num_layers strictly ascending ids,
  /// e.g. import_info::layer_ids of a TensorRT-LLM import); overrides first_moe_layer.
  std::vector<int> layer_ids;
};

/// Options of the SGLang writer.
struct sglang_export_options : layer_id_options {
  /// Total decoder layers of the model (num_hidden_layers); 0 means the last MoE layer + 1.
  int num_hidden_layers = 0;
};

/// Returns SGLang's `--init-expert-location` file: exactly {"physical_to_logical_map": [...]} with
/// one row per decoder layer; rows of dense layers hold the trivial arange(P) % E. Returns
/// invalid_argument when the MoE layers do not fit in num_hidden_layers.
result<std::string> to_sglang_mapping(const placement& p, const topology& topo,
                                      const sglang_export_options& options);

/// Options of the TensorRT-LLM writer.
struct trtllm_export_options : layer_id_options {
  /// 0 = static placement; > 0 lets the online balancer re-plan that many layers per iteration.
  int layer_updates_per_iter = 0;
};

/// Returns the TensorRT-LLM load-balancer YAML as PyYAML's yaml.dump prints it (sorted keys,
/// flow-style lists, no wrapping); keys of initial_global_assignments are decoder-layer ids.
result<std::string> to_trtllm_yaml(const placement& p, const topology& topo,
                                   const trtllm_export_options& options);

/// Returns the vllm-ascend expert map JSON (moe_layer_count, layer_list by MoE-layer ordinal);
/// returns invalid_value when a rank holds the same logical expert twice, which breaks its map.
result<std::string> to_ascend_expert_map(const placement& p, const topology& topo);

/// One input file of a run, for provenance.
struct export_source {
  std::string path;
  std::string format;  // e.g. stats_format_name(...)
  std::uint64_t bytes = 0;
  std::string sha256;  // 64 lowercase hex digits
};

/// Hashes and sizes a file into an export_source; io_error naming the path when it cannot be read.
result<export_source> describe_source(const std::string& path, const std::string& format);

/// What the plain JSON records about the run besides the placement itself.
struct export_metadata {
  std::string policy;            // policy name, e.g. "deepseek"
  std::string eplb_gen_version;  // empty: the library's own version
  std::vector<export_source> sources;
  std::optional<double> imbalance_before;  // predicted imbalance of the identity layout
  std::optional<double> imbalance_after;   // predicted imbalance of this placement
  /// Further string fields written into "meta" in this order (e.g. {"model", "..."}).
  std::vector<std::pair<std::string, std::string>> extra;
};

/// Returns eplb-gen's plain placement JSON: physical_to_logical, logical_to_physical (ascending
/// slots), replica_count and a "meta" object (policy, topology, sources with SHA-256, version,
/// predicted imbalance). Returns invalid_value when a prediction is not a finite number.
result<std::string> to_plain_json(const placement& p, const topology& topo,
                                  const export_metadata& meta);

}  // namespace eplb
