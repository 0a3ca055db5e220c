// make_aggregator: "cpu", "cuda" (with a fallback to the CPU) and "auto".

#include <memory>
#include <string>
#include <utility>

#include "aggregate/detail.hpp"
#include "eplb/aggregate.hpp"
#include "stats/text.hpp"

namespace eplb {

namespace {

using detail::cat;

std::string mib(std::uint64_t bytes) {
  if (bytes >= (std::uint64_t{1} << 20)) return cat(bytes >> 20, " MiB");
  if (bytes >= 1024) return cat(bytes >> 10, " KiB");
  return cat(bytes, " bytes");
}

// Picks CPU or CUDA when the reader says how large the input is (before the first record).
class auto_aggregator final : public aggregator {
 public:
  explicit auto_aggregator(const aggregator_options& options) : options_(options) {}

  status on_begin(const stats_input& input) override {
    if (!impl_) choose(input.bytes, true);
    return impl_->on_begin(input);
  }
  status on_record(const stats_record& record) override {
    if (!impl_) choose(0, false);
    return impl_->on_record(record);
  }
  result<load_matrix> finish() override {
    if (!impl_) choose(0, false);
    return impl_->finish();
  }
  const char* name() const noexcept override { return impl_ ? impl_->name() : "cpu"; }
  std::string info() const override {
    if (!impl_) return {};
    std::string inner = impl_->info();
    return inner.empty() ? note_ : cat(note_, "; ", inner);
  }

 private:
  void choose(std::uint64_t bytes, bool known) {
    if (!known || bytes < options_.auto_min_bytes) {
      impl_ = detail::make_cpu_aggregator("");
      note_ = known ? cat("auto: CPU (input of ", mib(bytes), " is below the CUDA threshold of ",
                          mib(options_.auto_min_bytes), ')')
                    : std::string("auto: CPU (input size unknown)");
      return;
    }
    std::string why;
    impl_ = detail::make_cuda_aggregator(options_, why);
    if (impl_) {
      note_ = cat("auto: CUDA (input of ", mib(bytes), ')');
      return;
    }
    impl_ = detail::make_cpu_aggregator("");
    note_ = cat("auto: CPU (", why, ')');
  }

  aggregator_options options_;
  std::unique_ptr<aggregator> impl_;
  std::string note_;
};

}  // namespace

result<std::unique_ptr<aggregator>> make_aggregator(const std::string& device,
                                                    const aggregator_options& options) {
  if (device == "cpu") return detail::make_cpu_aggregator("");
  if (device == "auto")
    return std::unique_ptr<aggregator>(std::make_unique<auto_aggregator>(options));
  if (device == "cuda") {
    std::string why;
    if (auto cuda = detail::make_cuda_aggregator(options, why)) return cuda;
    return detail::make_cpu_aggregator(
        cat("CUDA requested but not usable (", why, "); aggregating on the CPU"));
  }
  return make_error(errc::invalid_argument, position{}, "--device",
                    cat("unknown aggregation device '", device, "' (expected cpu, cuda or auto)"));
}

result<std::unique_ptr<aggregator>> make_aggregator(const std::string& device) {
  return make_aggregator(device, aggregator_options{});
}

}  // namespace eplb
