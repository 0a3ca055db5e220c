#include "eplb/flags.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <thread>

namespace eplb {

int effective_threads(int requested) noexcept {
  const int hardware = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  return requested <= 0 ? hardware : std::min(requested, hardware);
}

std::string describe_range(const int_flag& flag) {
  return fmt::format("between {} and {}{}", flag.min, flag.max, flag.note);
}

status check_flag(const int_flag& flag, std::int64_t value) {
  if (value >= flag.min && value <= flag.max) return status::success();
  return make_error(errc::invalid_argument, position{}, flag.name,
                    fmt::format("must be {}, got {}", describe_range(flag), value));
}

status check_flag(const int_flag& flag, const std::optional<int>& value) {
  return value ? check_flag(flag, *value) : status::success();
}

status check_flag(const real_flag& flag, double value) {
  const bool low_ok = flag.min_open ? value > flag.min : value >= flag.min;
  const bool high_ok = flag.max_open ? value < flag.max : value <= flag.max;
  if (std::isfinite(value) && low_ok && high_ok) return status::success();
  return make_error(errc::invalid_argument, position{}, flag.name,
                    fmt::format("must lie in {}{}, {}{}, got {}", flag.min_open ? '(' : '[',
                                flag.min, flag.max, flag.max_open ? ')' : ']', value));
}

status check_flag(const real_flag& flag, const std::optional<double>& value) {
  return value ? check_flag(flag, *value) : status::success();
}

}  // namespace eplb
