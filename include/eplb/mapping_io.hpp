#pragma once
// Mapping input for every format eplb-gen writes: vLLM `eplb_initial_mapping` JSONL (through
// loader.hpp, the one parser of vLLM mapping files), SGLang `--init-expert-location` JSON,
// TensorRT-LLM load-balancer YAML as PyYAML writes it, vllm-ascend expert map JSON and eplb-gen's
// plain JSON; format detection by content, and one entry point that renders any of them.
// Readers check the file against the rules of its engine and against the topology the caller
// expects; errors read "file:line:column: field: what".

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eplb/error.hpp"
#include "eplb/export.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// The mapping formats eplb-gen reads and writes.
enum class mapping_format : int {
  vllm,    // vLLM eplb_initial_mapping v1 JSONL
  sglang,  // SGLang {"physical_to_logical_map": [...]}, one row per decoder layer
  trtllm,  // TensorRT-LLM load-balancer YAML (initial_global_assignments, num_slots)
  ascend,  // vllm-ascend expert map JSON (moe_layer_count, layer_list)
  json,    // eplb-gen's plain placement JSON with provenance
};

/// Returns the format's CLI name: "vllm", "sglang", "trtllm", "ascend" or "json".
const char* mapping_format_name(mapping_format format) noexcept;

/// Returns the file name a format is written to by default ("mapping.jsonl", ...).
const char* default_mapping_file_name(mapping_format format) noexcept;

/// Parses a CLI name as mapping_format_name prints it; invalid_argument listing the names
/// otherwise.
result<mapping_format> parse_mapping_format(const std::string& name);

/// Tells the format of a mapping text by its content; invalid_value saying what was seen when no
/// format fits (including stats files given by mistake).
result<mapping_format> detect_mapping_format_text(std::string_view text, const std::string& name);

/// Reads `path` and tells its mapping format by content; io_error when it cannot be read.
result<mapping_format> detect_mapping_format(const std::string& path);

/// What the caller expects of a mapping and how to pick the MoE layers of layer-keyed formats.
/// A zero count (or -1 for num_redundant) is taken from the file, or inferred.
struct mapping_read_options {
  int num_layers = 0;      // MoE layers L
  int num_experts = 0;     // logical experts E; when neither given nor in the file: P - R, else
                           // the largest expert id + 1
  int num_ranks = 0;       // EP size: num_slots must be divisible by it (ascend: device_count)
  int num_redundant = -1;  // redundant slots R = P - E
  /// SGLang: row of MoE layer 0 (default: the last L rows when L is given, else row 0).
  /// TensorRT-LLM: the keys must be first_moe_layer .. first_moe_layer + L - 1.
  std::optional<int> first_moe_layer;
  /// SGLang: the number of rows the file must have (the model's num_hidden_layers); 0: any.
  int num_hidden_layers = 0;
};

/// A mapping read from a file, with the topology facts the format carries.
struct mapping_file {
  mapping_format format = mapping_format::vllm;
  placement place;    // the MoE layers' physical-to-logical map
  int num_ranks = 0;  // EP size stated by the file (ascend, plain JSON) or expected; 0: unknown
  /// Decoder-layer id of every MoE layer where the format keys layers by it (SGLang rows,
  /// TensorRT-LLM keys); empty for formats keyed by MoE-layer ordinal.
  std::vector<int> layer_ids;
  int num_hidden_layers = 0;       // SGLang: rows in the file; 0 elsewhere
  int layer_updates_per_iter = 0;  // TensorRT-LLM: as written; 0 elsewhere
  std::string policy;              // plain JSON: meta.policy; empty elsewhere
};

/// Returns the topology a mapping implies: its L, E and P, with `num_ranks` (the file's when it
/// states one and `num_ranks` is 0); one node and one group.
topology mapping_topology(const mapping_file& mapping, int num_ranks);

/// Parses a vLLM eplb_initial_mapping file with eplb::loader::parse_mapping, so exactly the rules
/// of vLLM's loader apply; returns its message ("name:line:column: what") on failure.
result<mapping_file> read_vllm_mapping_text(std::string_view text, const std::string& name,
                                            const mapping_read_options& options);

/// Parses an SGLang --init-expert-location JSON object (only the key physical_to_logical_map,
/// every row valid) and picks the MoE rows; errors name line, column and
/// `physical_to_logical_map[r][s]`.
result<mapping_file> read_sglang_mapping_text(std::string_view text, const std::string& name,
                                              const mapping_read_options& options);

/// Parses TensorRT-LLM load-balancer YAML of the shape PyYAML's yaml.dump writes (top-level keys
/// initial_global_assignments, num_slots, layer_updates_per_iter; flow lists of integers);
/// anything else is an error naming line, column and key.
result<mapping_file> read_trtllm_yaml_text(std::string_view text, const std::string& name,
                                           const mapping_read_options& options);

/// Parses a vllm-ascend expert map JSON (layers by position, devices by position, no logical
/// expert twice on one device); errors name line, column and `layer_list[l].device_list[d]...`.
result<mapping_file> read_ascend_expert_map_text(std::string_view text, const std::string& name,
                                                 const mapping_read_options& options);

/// Parses eplb-gen's plain placement JSON; logical_to_physical and replica_count, when present,
/// must agree with physical_to_logical.
result<mapping_file> read_plain_json_text(std::string_view text, const std::string& name,
                                          const mapping_read_options& options);

/// Parses a mapping text of the given format (the matching read_*_text).
result<mapping_file> read_mapping_text(std::string_view text, const std::string& name,
                                       mapping_format format, const mapping_read_options& options);

/// Reads a mapping file, detecting its format by content when `format` is empty.
result<mapping_file> read_mapping(const std::string& path, std::optional<mapping_format> format,
                                  const mapping_read_options& options);

/// What the writers need beyond the placement: decoder-layer ids and the provenance of the run.
struct mapping_render_options {
  layer_id_options layers;         // SGLang and TensorRT-LLM keys
  int num_hidden_layers = 0;       // SGLang rows; 0: the last MoE layer + 1
  int layer_updates_per_iter = 0;  // TensorRT-LLM
  export_metadata meta;            // plain JSON
};

/// Renders a placement in a format (to_vllm_mapping, to_sglang_mapping, ...); the writer's error
/// otherwise.
result<std::string> render_mapping(mapping_format format, const placement& p, const topology& topo,
                                   const mapping_render_options& options);

}  // namespace eplb
