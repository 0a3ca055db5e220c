#pragma once
// Private: the aggregator implementations behind make_aggregator.

#include <memory>
#include <string>

#include "eplb/aggregate.hpp"

namespace eplb::detail {

/// The CPU aggregator; `info` is returned by its info().
std::unique_ptr<aggregator> make_cpu_aggregator(std::string info);

/// The CUDA aggregator, or nullptr with the reason in `why` when CUDA is not built or no device
/// is usable. If the device fails when the first record arrives, it aggregates on the CPU and
/// says so in info().
std::unique_ptr<aggregator> make_cuda_aggregator(const aggregator_options& options,
                                                 std::string& why);

}  // namespace eplb::detail
