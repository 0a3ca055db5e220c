// The step sampler: a bounded, evenly spaced sample of the records of a stats stream.

#include <algorithm>

#include "core/thinning.hpp"
#include "eplb/aggregate.hpp"
#include "stats/text.hpp"

namespace eplb {

using detail::cat;

step_sampler::step_sampler(stats_sink* next, int max_samples, std::size_t max_bytes)
    : next_(next), max_samples_(std::max(max_samples, 2)), max_bytes_(max_bytes) {}

status step_sampler::on_record(const stats_record& r) {
  if (next_) {
    if (status s = next_->on_record(r); !s.ok()) return s;
  }
  const std::uint64_t index = kept_.records++;
  if (index % stride_ != 0) return status::success();
  if (logical_.rows() != r.num_layers || logical_.cols() != r.num_experts) {
    if (r.num_layers < 1 || r.num_experts < 1 || !kept_.loads.empty()) {
      return make_error(errc::shape_mismatch, r.where, "",
                        cat("record has ", r.num_layers, " layers and ", r.num_experts,
                            " experts; the first sampled record had ", logical_.rows(), " and ",
                            logical_.cols()));
    }
    logical_ = load_matrix::Zero(r.num_layers, r.num_experts);
    // Bounded memory whatever the shape: a huge model keeps fewer samples.
    const std::size_t bytes =
        static_cast<std::size_t>(r.num_layers) * static_cast<std::size_t>(r.num_experts) * 4;
    max_samples_ = static_cast<int>(std::clamp<std::size_t>(
        max_bytes_ / std::max<std::size_t>(bytes, 1), 2, static_cast<std::size_t>(max_samples_)));
  }
  logical_.setZero();
  if (status s = fold_record(r, logical_); !s.ok()) return s;
  kept_.index.push_back(index);
  kept_.loads.push_back(logical_.cast<float>());
  if (static_cast<int>(kept_.loads.size()) > max_samples_) {
    // Evenly spaced and bounded (see detail::thinning).
    detail::thinning::keep_even(kept_.index);
    detail::thinning::keep_even(kept_.loads);
    stride_ *= 2;
  }
  return status::success();
}

}  // namespace eplb
