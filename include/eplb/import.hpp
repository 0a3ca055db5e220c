#pragma once
// Stats import from engines other than vLLM: SGLang `logical_count` JSON, TensorRT-LLM expert
// statistics (meta_info.json + rank{r}.safetensors), LMDeploy statistics JSON and plain load
// matrices (JSON or CSV). Each importer returns the per-layer per-logical-expert load matrix the
// policies take, plus what it read; vLLM JSONL goes through read_vllm_stats (stats.hpp) instead.

#include <cstdint>
#include <string>
#include <vector>

#include "eplb/error.hpp"
#include "eplb/stats.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// The stats formats eplb-gen can tell apart by content.
enum class stats_format : int {
  vllm_jsonl,   // vLLM offline EPLB: JSON lines, record_type eplb_load_meta / eplb_load_stats
  sglang_json,  // SGLang: JSON object with `logical_count` [L][E] or [T][L][E]
  trtllm_dir,   // TensorRT-LLM: directory with meta_info.json and rank{r}.safetensors
  matrix_json,  // LMDeploy statistics or a plain load matrix: JSON 2-D array [layers][experts]
  matrix_csv,   // plain load matrix: CSV, one line per layer
};

/// Returns a short stable name for a format ("vllm_jsonl", "sglang_json", ...).
const char* stats_format_name(stats_format format) noexcept;

/// Parses a format name as stats_format_name prints it (plus "trtllm", "lmdeploy", "csv", "json",
/// "sglang", "vllm"); returns invalid_argument naming the accepted names otherwise.
result<stats_format> parse_stats_format(const std::string& name);

/// Tells the format of a stats path by its content: a directory or a file named meta_info.json is
/// TensorRT-LLM; otherwise the first non-blank character and line decide. Returns io_error when the
/// path cannot be read and invalid_value (saying what was seen) when no format fits.
result<stats_format> detect_stats_format(const std::string& path);

/// Options of the importers.
struct import_options {
  /// SGLang: inclusive range of step indices into the [T] axis (0-based); TensorRT-LLM: inclusive
  /// range of iteration numbers (the `{iter}` of the keys); ignored by the matrix formats.
  step_range steps;
  /// SGLang, LMDeploy and matrix formats: leading rows (dense decoder layers) dropped before the
  /// MoE layers start; 0 keeps every row. TensorRT-LLM ignores it (its keys name MoE layers only).
  int skip_layers = 0;
};

/// What an importer read, for the run summary and the metadata of the written mapping.
struct import_info {
  stats_format format = stats_format::matrix_json;
  std::vector<std::string> files;  // files read, in the order they were summed
  int num_layers = 0;              // MoE layers L (rows of the load matrix)
  int num_experts = 0;             // logical experts E (columns)
  /// Absolute decoder-layer id of every row: TensorRT-LLM keys, or skip_layers + row elsewhere.
  std::vector<int> layer_ids;
  std::int64_t steps_total = 0;  // steps (SGLang T) or iterations (TensorRT-LLM) in the input
  std::int64_t steps_used = 0;   // of those, summed into the matrix
  std::int64_t first_step = 0;   // first step index / iteration used
  std::int64_t last_step = 0;    // last step index / iteration used
  /// Leading rows of the result that are all zero (dense layers kept by mistake?); the caller
  /// may suggest skip_layers from it.
  int leading_zero_rows = 0;
  int num_ranks = 0;              // TensorRT-LLM: number of rank files; 0 elsewhere
  int num_experts_per_token = 0;  // TensorRT-LLM meta_info.json top_k; 0 when unknown
};

/// An imported load matrix and what it came from.
struct imported_stats {
  load_matrix load;  // [num_layers][num_experts], every entry >= 0
  import_info info;
};

/// Reads an SGLang `{"logical_count": [[...]]}` JSON file (2-D [L][E] or 3-D [T][L][E], summed
/// over the selected steps); errors name the file, line and field (`logical_count[3][17]`).
result<imported_stats> import_sglang(const std::string& path, const import_options& options);

/// Same as import_sglang on an in-memory text (`name` stands for the file in messages).
result<imported_stats> import_sglang_text(const std::string& text, const std::string& name,
                                          const import_options& options);

/// Reads a TensorRT-LLM expert-statistic directory (or its meta_info.json): sums every
/// rank{r}.safetensors over ranks and the selected iterations; rows are the MoE layers in
/// ascending decoder-layer id (info.layer_ids). Errors name the file and key.
result<imported_stats> import_trtllm(const std::string& path, const import_options& options);

/// Reads a load matrix from a JSON 2-D array (LMDeploy statistics) or CSV file, chosen by content.
result<imported_stats> import_matrix(const std::string& path, const import_options& options);

/// Parses a JSON 2-D array [layers][experts] of non-negative integral numbers.
result<imported_stats> import_matrix_json_text(const std::string& text, const std::string& name,
                                               const import_options& options);

/// Parses CSV: one line per layer, comma-separated non-negative integers; a first line that is not
/// numeric is taken as a header and skipped; blank lines are ignored.
result<imported_stats> import_matrix_csv_text(const std::string& text, const std::string& name,
                                              const import_options& options);

/// Detects the format of `path` and runs the matching importer; vLLM JSONL is refused with
/// invalid_argument (it is read by read_vllm_stats, which streams records).
result<imported_stats> import_stats(const std::string& path, const import_options& options);

/// Runs the importer of a given format (detection skipped); vLLM JSONL is refused as above.
result<imported_stats> import_stats_as(const std::string& path, stats_format format,
                                       const import_options& options);

/// Runs the importer of a given format on a text read already (a FIFO or standard input); the
/// TensorRT-LLM folder and vLLM JSONL are refused with invalid_argument.
result<imported_stats> import_stats_text(const std::string& text, const std::string& name,
                                         stats_format format, const import_options& options);

// --- safetensors container ------------------------------------------------------------------

/// One tensor of a safetensors header: its name, dtype, shape and byte range in the data buffer.
struct safetensors_entry {
  std::string name;
  std::string dtype;  // "I64", "I32", "F32", ...
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0;  // byte offsets relative to the first byte after the header
  std::uint64_t end = 0;    // exclusive
};

/// A parsed safetensors file: the tensors in header order (`__metadata__` skipped) and the bytes.
struct safetensors_file {
  std::string name;              // file name used in messages
  std::string bytes;             // the whole file
  std::uint64_t data_start = 0;  // 8 + header length
  std::vector<safetensors_entry> entries;
};

/// Largest header length accepted, as in the reference reader.
inline constexpr std::uint64_t k_safetensors_max_header = 100000000;

/// Parses the container: u64 little-endian header length (at most k_safetensors_max_header),
/// JSON header, bounds-checked data offsets whose size matches shape and dtype. Returns
/// invalid_value / limit_exceeded / out_of_range naming the file and tensor otherwise.
result<safetensors_file> parse_safetensors(std::string bytes, const std::string& name);

/// Reads and parses a safetensors file; io_error naming the path when it cannot be read.
result<safetensors_file> read_safetensors(const std::string& path);

/// Returns the elements of a tensor as int64: integer dtypes (I8..I64, U8..U64) are converted
/// exactly; F32/F64 must hold finite integral values. Other dtypes are wrong_type.
result<std::vector<std::int64_t>> safetensors_to_int64(const safetensors_file& file,
                                                       const safetensors_entry& entry);

}  // namespace eplb
