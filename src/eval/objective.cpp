// The per-step planning objective: a bounded sample of train steps, a slot-swap search that
// lowers the mean per-step imbalance on it, and the hold-out guard (see
// include/eplb/objective.hpp).

#include "eplb/objective.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>
#include <utility>

#include "eplb/aggregate.hpp"
#include "eval/replay_core.hpp"
#include "stats/text.hpp"

namespace eplb {

using detail::cat;

namespace {

// The search of one layer. Slot a carries x[a][s] = load of its expert in sample s / replicas;
// rank r carries load[r][s]. The layer's share of the objective is sum_s w_s * max_r load[r][s]
// with w_s = 1 / (the step's mean rank load summed over layers), so summing the layers gives the
// mean per-step imbalance times the number of samples. Per sample the three largest rank loads
// are kept; for a pair of ranks (ra, rb) the largest load of the other ranks follows from them,
// so every swap between the two ranks is scored in O(samples) by a branch-free loop.
class layer_search {
 public:
  layer_search(const std::vector<sample_matrix>& samples, const std::vector<double>& weights,
               const topology& topo)
      : samples_(samples),
        w_(weights),
        S_(samples.size()),
        P_(topo.num_slots),
        R_(topo.num_ranks),
        k_(topo.slots_per_rank()) {}

  std::uint64_t run(std::int32_t* row, int layer, int rank_block, int max_passes) {
    std::vector<int> count(static_cast<std::size_t>(samples_.empty() ? 0 : samples_[0].cols()), 0);
    for (int a = 0; a < P_; ++a) ++count[static_cast<std::size_t>(row[a])];
    x_.assign(static_cast<std::size_t>(P_) * S_, 0.0);
    load_.assign(static_cast<std::size_t>(R_) * S_, 0.0);
    for (int a = 0; a < P_; ++a) {
      const int e = row[a];
      const double inv = 1.0 / count[static_cast<std::size_t>(e)];
      double* xa = slot(a);
      double* la = rank(a / k_);
      for (std::size_t s = 0; s < S_; ++s) {
        xa[s] = static_cast<double>(samples_[s](layer, e)) * inv;
        la[s] += xa[s];
      }
    }
    for (auto* v : {&v0_, &v1_, &v2_}) v->assign(S_, 0.0);
    for (auto* r : {&r0_, &r1_, &r2_}) r->assign(S_, -1);
    other_.assign(S_, 0.0);
    for (std::size_t s = 0; s < S_; ++s) update_top(s);
    double scale = 0;
    for (std::size_t s = 0; s < S_; ++s) scale += w_[s] * v0_[s];
    // Swaps must gain more than rounding can fake, so the search cannot cycle.
    const double eps = 1e-12 * scale;
    std::uint64_t swaps = 0;
    for (int pass = 0; pass < max_passes; ++pass) {
      bool improved = false;
      for (int ra = 0; ra < R_; ++ra) {
        // Blocks are runs of consecutive ranks.
        for (int rb = ra + 1; rb < R_ && rb / rank_block == ra / rank_block; ++rb) {
          fill_other(ra, rb);
          for (int a = ra * k_; a < (ra + 1) * k_; ++a) {
            for (int b = rb * k_; b < (rb + 1) * k_; ++b) {
              if (row[a] == row[b] || gain(a, b, ra, rb) >= -eps) continue;
              apply(a, b, ra, rb);
              std::swap(row[a], row[b]);
              fill_other(ra, rb);
              improved = true;
              ++swaps;
            }
          }
        }
      }
      if (!improved) break;
    }
    return swaps;
  }

 private:
  double* slot(int a) { return x_.data() + static_cast<std::size_t>(a) * S_; }
  double* rank(int r) { return load_.data() + static_cast<std::size_t>(r) * S_; }
  const double* slot(int a) const { return x_.data() + static_cast<std::size_t>(a) * S_; }
  const double* rank(int r) const { return load_.data() + static_cast<std::size_t>(r) * S_; }

  void update_top(std::size_t s) {
    double v[3] = {-1, -1, -1};
    int r[3] = {-1, -1, -1};
    for (int q = 0; q < R_; ++q) {
      const double y = rank(q)[s];
      if (y > v[0]) {
        v[2] = v[1], r[2] = r[1], v[1] = v[0], r[1] = r[0], v[0] = y, r[0] = q;
      } else if (y > v[1]) {
        v[2] = v[1], r[2] = r[1], v[1] = y, r[1] = q;
      } else if (y > v[2]) {
        v[2] = y, r[2] = q;
      }
    }
    v0_[s] = v[0], v1_[s] = v[1], v2_[s] = v[2];
    r0_[s] = r[0], r1_[s] = r[1], r2_[s] = r[2];
  }

  // The largest load per sample among the ranks other than ra and rb (two of the top three at
  // most are ra and rb; with fewer than three ranks v2 is -1).
  void fill_other(int ra, int rb) {
    for (std::size_t s = 0; s < S_; ++s) {
      other_[s] = (r0_[s] != ra && r0_[s] != rb)   ? v0_[s]
                  : (r1_[s] != ra && r1_[s] != rb) ? v1_[s]
                                                   : v2_[s];
    }
  }

  // Change of the layer's objective if slots a (rank ra) and b (rank rb) swapped experts.
  double gain(int a, int b, int ra, int rb) const {
    const double* xa = slot(a);
    const double* xb = slot(b);
    const double* la = rank(ra);
    const double* lb = rank(rb);
    double delta = 0;
    for (std::size_t s = 0; s < S_; ++s) {
      const double d = xb[s] - xa[s];
      const double next = std::max(other_[s], std::max(la[s] + d, lb[s] - d));
      delta += (next - v0_[s]) * w_[s];
    }
    return delta;
  }

  void apply(int a, int b, int ra, int rb) {
    double* xa = slot(a);
    double* xb = slot(b);
    double* la = rank(ra);
    double* lb = rank(rb);
    for (std::size_t s = 0; s < S_; ++s) {
      const double d = xb[s] - xa[s];
      la[s] += d;
      lb[s] -= d;
      std::swap(xa[s], xb[s]);
      update_top(s);
    }
  }

  const std::vector<sample_matrix>& samples_;
  const std::vector<double>& w_;
  std::size_t S_;
  int P_, R_, k_;
  std::vector<double> x_, load_, v0_, v1_, v2_, other_;
  std::vector<int> r0_, r1_, r2_;
};

int thread_count(int requested, int work) {
  int n = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(n, 1, std::max(work, 1));
}

}  // namespace

result<objective_kind> parse_objective(const std::string& name) {
  if (name == "sum") return objective_kind::sum;
  if (name == "per-step") return objective_kind::per_step;
  std::string what = "unknown objective '";
  what.append(name).append("' (expected sum or per-step)");
  return make_error(errc::invalid_argument, position{}, "--objective", what);
}

const char* objective_name(objective_kind kind) noexcept {
  return kind == objective_kind::per_step ? "per-step" : "sum";
}

step_sampler::step_sampler(stats_sink* next, int max_samples)
    : next_(next), max_samples_(std::max(max_samples, 2)) {}

status step_sampler::on_record(const stats_record& r) {
  if (next_) {
    if (status s = next_->on_record(r); !s.ok()) return s;
  }
  const std::uint64_t index = steps_++;
  if (index % stride_ != 0) return status::success();
  if (logical_.rows() != r.num_layers || logical_.cols() != r.num_experts) {
    if (r.num_layers < 1 || r.num_experts < 1 || !samples_.empty()) {
      return make_error(errc::shape_mismatch, r.where, "",
                        cat("record has ", r.num_layers, " layers and ", r.num_experts,
                            " experts; the first sampled record had ", logical_.rows(), " and ",
                            logical_.cols()));
    }
    logical_ = load_matrix::Zero(r.num_layers, r.num_experts);
  }
  logical_.setZero();
  if (status s = fold_record(r, logical_); !s.ok()) return s;
  index_.push_back(index);
  samples_.push_back(logical_.cast<float>());
  if (static_cast<int>(samples_.size()) > max_samples_) {
    // Evenly spaced and bounded (see detail::thinning).
    detail::thinning::keep_even(index_);
    detail::thinning::keep_even(samples_);
    stride_ *= 2;
  }
  return status::success();
}

double mean_step_imbalance(const std::vector<sample_matrix>& samples, const placement& p,
                           const topology& topo) {
  if (samples.empty()) return 0.0;
  detail::slot_table table;
  table.build(p, topo.num_ranks);
  const int R = topo.num_ranks;
  std::vector<double> loads(static_cast<std::size_t>(R));
  double sum = 0;
  for (const sample_matrix& w : samples) {
    double sum_max = 0;
    double sum_mean = 0;
    for (Eigen::Index l = 0; l < w.rows(); ++l) {
      std::fill(loads.begin(), loads.end(), 0.0);
      table.add_layer(static_cast<int>(l), w.row(l).data(), loads.data());
      sum_max += loads[static_cast<std::size_t>(detail::argmax(loads.data(), R))];
      sum_mean += static_cast<double>(w.row(l).sum()) / R;
    }
    sum += sum_mean > 0 ? sum_max / sum_mean : 0.0;
  }
  return sum / static_cast<double>(samples.size());
}

placement refine_per_step(placement p, const topology& topo,
                          const std::vector<sample_matrix>& samples, int rank_block, int max_passes,
                          int threads, std::uint64_t* swaps) {
  if (swaps) *swaps = 0;
  if (samples.empty() || topo.num_ranks < 2 || max_passes < 1) return p;
  rank_block = std::clamp(rank_block, 1, topo.num_ranks);
  std::vector<double> weights(samples.size());
  for (std::size_t s = 0; s < samples.size(); ++s) {
    const double mean = static_cast<double>(samples[s].sum()) / topo.num_ranks;
    weights[s] = mean > 0 ? 1.0 / mean : 0.0;
  }
  std::vector<std::uint64_t> layer_swaps(static_cast<std::size_t>(p.num_layers), 0);
  std::atomic<int> next{0};
  auto worker = [&]() {
    layer_search search(samples, weights, topo);
    for (int l = next++; l < p.num_layers; l = next++) {
      layer_swaps[static_cast<std::size_t>(l)] = search.run(p.row(l), l, rank_block, max_passes);
    }
  };
  const int n = thread_count(threads, p.num_layers);
  std::vector<std::thread> pool;
  for (int i = 1; i < n; ++i) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  if (swaps) {
    for (std::uint64_t c : layer_swaps) *swaps += c;
  }
  return p;
}

result<placement> plan_per_step(const weight_matrix& sums, const step_sampler& sampler,
                                const topology& topo, const policy_options& policy,
                                const objective_options& options, plan_info* policy_info,
                                objective_info* info) {
  objective_info local;
  objective_info& out = info ? *info : local;
  out = objective_info{};
  out.objective = "per-step";
  plan_info pinfo;
  auto base = rebalance(sums, topo, policy, &pinfo);
  if (!base) return base.err();
  if (policy_info) *policy_info = pinfo;
  // A hierarchical placement keeps each expert group on one node: swap within nodes only.
  const int rank_block =
      pinfo.hierarchical && topo.num_nodes > 1 ? topo.num_ranks / topo.num_nodes : topo.num_ranks;
  const auto cut = static_cast<std::uint64_t>((1.0 - options.holdout_fraction) *
                                              static_cast<double>(sampler.steps()));
  std::vector<sample_matrix> fit, holdout;
  for (std::size_t i = 0; i < sampler.samples().size(); ++i) {
    (sampler.sample_index()[i] < cut ? fit : holdout).push_back(sampler.samples()[i]);
  }
  out.samples = sampler.samples().size();
  out.fit_samples = fit.size();
  out.holdout_samples = holdout.size();
  if (static_cast<int>(fit.size()) < options.min_samples ||
      static_cast<int>(holdout.size()) < options.min_samples) {
    out.note = cat("too few train steps (", sampler.steps(),
                   ") for the internal hold-out: the sum objective's placement is kept");
    return base;
  }
  weight_matrix fit_sums = weight_matrix::Zero(sums.rows(), sums.cols());
  for (const sample_matrix& m : fit) fit_sums += m.cast<double>();
  auto base_fit = rebalance(fit_sums, topo, policy);
  if (!base_fit) return base_fit.err();
  const placement searched_fit = refine_per_step(*base_fit, topo, fit, rank_block,
                                                 options.max_passes, options.threads, nullptr);
  out.holdout_sum = mean_step_imbalance(holdout, *base_fit, topo);
  out.holdout_search = mean_step_imbalance(holdout, searched_fit, topo);
  if (!(out.holdout_search < out.holdout_sum)) {
    out.note =
        "the search did not lower the hold-out's per-step imbalance: the sum objective's "
        "placement is kept";
    return base;
  }
  out.searched = true;
  return refine_per_step(std::move(*base), topo, sampler.samples(), rank_block, options.max_passes,
                         options.threads, &out.swaps);
}

}  // namespace eplb
