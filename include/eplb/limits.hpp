#pragma once
// The documented input limits (docs/limits.md). Every reader, importer, the loader and the topology
// check enforce them with errc::limit_exceeded (the loader with its own message), so a hostile
// file cannot make eplb-gen allocate memory out of proportion to a real model. The largest models
// in use are far below them (DeepSeek-V3: 58 MoE layers x 256 experts, 288 slots at EP 32).
//
// Standard library only and C++17, like loader.hpp, which includes it.

#include <cstddef>
#include <cstdint>

namespace eplb::limits {

/// Most MoE layers (rows of a load matrix, keys of a mapping).
inline constexpr int max_layers = 4096;
/// Most logical experts per layer.
inline constexpr int max_experts = 65536;
/// Most physical slots per layer (experts + redundant); bounds the EP size too (P % EP == 0).
inline constexpr int max_slots = 65536;
/// Most cells of one [layers][slots] matrix (and so of [layers][experts]): 2^24, 64 MiB as int32.
inline constexpr std::int64_t max_cells = std::int64_t{1} << 24;
/// Most expert groups and nodes (each must divide experts or ranks, so at most max_slots).
inline constexpr int max_groups = max_slots;
/// Default longest line of a stats JSONL file (the record of one step); eplb-gen --max-line-bytes.
inline constexpr std::size_t default_max_line_bytes = std::size_t{1} << 24;
/// Upper bound a caller may raise the line length to (simdjson's window must hold a line).
inline constexpr std::size_t max_line_bytes = std::size_t{1} << 31;
/// Largest file the whole-file importers (SGLang, matrix JSON/CSV, safetensors) read into memory.
inline constexpr std::uint64_t max_import_file_bytes = std::uint64_t{1} << 30;
/// Largest mapping file a reader (loader.hpp included) reads into memory: 2^24 cells of up to
/// seven bytes ("65535, ") each, with room for pretty-printed formats.
inline constexpr std::uint64_t max_mapping_file_bytes = std::uint64_t{1} << 28;
/// Decoder layers of a model (SGLang rows, TensorRT-LLM keys): ids lie in [0, max_decoder_layers).
inline constexpr int max_decoder_layers = 2 * max_layers;
/// Most (rank, expert) pairs of one layer a plan may have, EP x E: the policies keep a table of
/// them per layer and thread (2^24 bytes each).
inline constexpr std::int64_t max_rank_expert_pairs = std::int64_t{1} << 24;
/// Most planner work, L x E x (P / EP + EP): the lower bounds and the policies' searches grow with
/// E x (slots per rank) and E x EP per layer. 2^28 plans in a few seconds on one core; DeepSeek-V3
/// (58 x 256, 288 slots, EP 32) is 0.6 M.
inline constexpr std::int64_t max_plan_work = std::int64_t{1} << 28;
/// Most threads any stage starts (--threads); the machines in use have a few hundred at most.
inline constexpr int max_threads = 1024;

}  // namespace eplb::limits
