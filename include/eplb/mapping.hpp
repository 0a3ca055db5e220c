#pragma once
// Mapping output: serialises a validated placement to the formats serving engines load, and
// writes files atomically (temporary file in the target directory, fsync, rename).

#include <string>

#include "eplb/error.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// Returns the one-line `eplb_initial_mapping` v1 record (with trailing newline) vLLM loads.
/// Returns invalid_value when the placement breaks a rule vLLM's loader enforces.
result<std::string> to_vllm_mapping(const placement& p, const topology& topo);

/// Writes `content` to `path` atomically (temporary file in the same directory, fsync, rename);
/// returns io_error naming the path, and leaves any previous file untouched on failure.
status write_file_atomic(const std::string& path, const std::string& content);

/// Reads a whole file; returns io_error naming the path.
result<std::string> read_file(const std::string& path);

}  // namespace eplb
