// CPU aggregation: logical[l][p2l[l][p]] += expert_load[l][p], summed over records in int64.

#include <memory>
#include <string>
#include <utility>

#include "aggregate/detail.hpp"
#include "eplb/aggregate.hpp"
#include "stats/text.hpp"

namespace eplb {

namespace {

using detail::cat;

class cpu_aggregator final : public aggregator {
 public:
  explicit cpu_aggregator(std::string info) : info_(std::move(info)) {}

  status on_record(const stats_record& record) override {
    if (!started_) {
      if (auto st = detail::check_first_record(record); !st) return st;
      sums_ = load_matrix::Zero(record.num_layers, record.num_experts);
      started_ = true;
    }
    if (auto st = fold_record(record, sums_); !st) return st;
    ++records_;
    return status::success();
  }

  result<load_matrix> finish() override {
    if (records_ == 0) return detail::no_records_error();
    load_matrix out = std::move(sums_);
    sums_ = load_matrix();
    started_ = false;
    records_ = 0;
    return out;
  }

  const char* name() const noexcept override { return "cpu"; }
  std::string info() const override { return info_; }

 private:
  std::string info_;
  load_matrix sums_;
  bool started_ = false;
  std::uint64_t records_ = 0;
};

}  // namespace

namespace detail {

status check_first_record(const stats_record& record) {
  if (record.num_layers < 1 || record.num_experts < 1) {
    return make_error(
        errc::invalid_value, record.where, "",
        cat("record has ", record.num_layers, " layers and ", record.num_experts, " experts"));
  }
  return status::success();
}

error no_records_error() {
  return make_error(errc::no_records, position{}, "", "no eplb_load_stats records were aggregated");
}

}  // namespace detail

status fold_record(const stats_record& record, load_matrix& into) {
  if (record.num_layers != into.rows() || record.num_experts != into.cols()) {
    return make_error(errc::shape_mismatch, record.where, "",
                      cat("record shape [", record.num_layers, "][", record.num_experts,
                          "] does not match the sums [", into.rows(), "][", into.cols(), ']'));
  }
  const int num_slots = record.num_slots;
  const std::int64_t num_experts = into.cols();
  for (int l = 0; l < record.num_layers; ++l) {
    const std::size_t base = static_cast<std::size_t>(l) * static_cast<std::size_t>(num_slots);
    const std::int64_t* load = record.expert_load + base;
    const std::int32_t* map = record.p2l_map + base;
    std::int64_t* sums = into.data() + static_cast<std::int64_t>(l) * num_experts;
    for (int p = 0; p < num_slots; ++p) {
      const std::int32_t e = map[p];
      if (e < 0 || e >= num_experts) {
        return make_error(errc::out_of_range, record.where, "p2l_map",
                          cat("layer ", l, ", slot ", p, ": logical expert id ", e,
                              " is outside [0, ", num_experts, ')'));
      }
      if (__builtin_add_overflow(sums[e], load[p], &sums[e])) {
        return make_error(
            errc::overflow, record.where, "expert_load",
            cat("layer ", l, ", expert ", e, ": the summed load overflows a 64-bit integer"));
      }
    }
  }
  return status::success();
}

namespace detail {

std::unique_ptr<aggregator> make_cpu_aggregator(std::string info) {
  return std::make_unique<cpu_aggregator>(std::move(info));
}

}  // namespace detail

}  // namespace eplb
