#pragma once
// Mapping output: serialises a validated placement to the formats serving engines load; files.hpp
// writes them atomically (temporary file in the target directory, fsync, rename).

#include <string>

#include "eplb/error.hpp"
#include "eplb/files.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// Returns the one-line `eplb_initial_mapping` v1 record (with trailing newline) vLLM loads.
/// Returns invalid_value when the placement breaks a rule vLLM's loader enforces.
result<std::string> to_vllm_mapping(const placement& p, const topology& topo);

}  // namespace eplb
