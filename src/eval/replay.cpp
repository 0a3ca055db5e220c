// Replay: every judged step's logical loads through every candidate placement, keeping the
// per-step model imbalance (for percentiles), per-layer and per-rank sums, and bounded
// downsampled series for reports. One sequential pass; the per-step lower bound (costlier than
// reading a step) runs at the end on retained steps, in parallel, each step on its own, so
// results depend only on the inputs.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>
#include <utility>

#include "core/thinning.hpp"
#include "eplb/aggregate.hpp"
#include "eplb/bounds.hpp"
#include "eplb/eval.hpp"
#include "eval/replay_core.hpp"
#include "stats/text.hpp"

namespace eplb {

namespace {

using detail::cat;

// Per-candidate state of the replay.
struct candidate_state {
  candidate_report report;
  detail::slot_table table;
  bool fixed = true;                   // false: the table follows each record's p2l_map
  std::vector<std::int32_t> last_p2l;  // p2l_map the table was last built from (recorded)
  bool same_as_bound = true;           // same slots and ranks as the bound's topology throughout
  std::vector<double> sum_max;         // per step: sum over layers of the max rank load
  weight_matrix rank_sum;              // [L][R] summed rank loads
  std::vector<double> mean_sum;        // [L] summed mean rank loads
  std::vector<double> layer_ratio_sum;
  std::vector<std::int64_t> layer_steps;
  // Buckets: model imbalance sum/max/count, per-layer ratio sum/max/count.
  std::vector<double> b_sum, b_max;
  std::vector<std::int32_t> b_count;
  std::vector<double> bl_sum, bl_max;
  std::vector<std::int32_t> bl_count;
};

}  // namespace

struct replayer::impl {
  topology topo;
  replay_options opt;
  std::vector<candidate_state> cands;
  load_matrix logical;
  load_matrix logical_sum;
  std::vector<double> totals;  // [L] logical load per layer of the step
  std::vector<double> loads;   // [L][R] rank loads of one candidate in one step
  std::vector<std::int64_t> steps;
  std::vector<double> step_total;  // per step: sum over layers of the logical load
  int bucket_width = 1;
  int bucket_count = 0;
  detail::thinning sample_thin{1};
  std::vector<std::int64_t> sampled;
  // Steps kept for the bound: their index in `steps` and logical loads ([L][E]).
  detail::thinning bound_thin{1};
  std::vector<std::size_t> bound_index;
  std::vector<sample_matrix> bound_loads;
  std::vector<double> inline_bound;  // bound_steps == 0: sum_l LB_l of every step

  void merge_buckets();
  status replay(const stats_record& r);
  template <class M>
  double sum_bound(const M& logical_loads, std::vector<double>& weights) const;
  std::vector<double> retained_bounds() const;
};

replayer::replayer(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
replayer::replayer(replayer&&) noexcept = default;
replayer& replayer::operator=(replayer&&) noexcept = default;
replayer::~replayer() = default;

result<replayer> replayer::create(const topology& topo, std::vector<eval_candidate> candidates,
                                  const replay_options& options) {
  if (status s = validate_topology(topo); !s.ok()) return s.err();
  if (candidates.empty()) {
    return make_error(errc::invalid_argument, position{}, "eval", "no mapping to judge");
  }
  if (options.series_buckets < 2 || options.sampled_steps < 1) {
    return make_error(errc::invalid_argument, position{}, "eval",
                      "series_buckets must be >= 2 and sampled_steps >= 1");
  }
  auto p = std::make_unique<impl>();
  p->topo = topo;
  p->opt = options;
  p->sample_thin = detail::thinning(static_cast<std::size_t>(options.sampled_steps));
  p->bound_thin = detail::thinning(static_cast<std::size_t>(std::max(options.bound_steps, 1)));
  const auto L = static_cast<std::size_t>(topo.num_layers);
  for (eval_candidate& c : candidates) {
    candidate_state st;
    st.report.name = c.name;
    st.report.identity = c.identity;
    st.report.baseline = c.baseline;
    st.report.num_ranks = topo.num_ranks;
    if (c.layout) {
      topology t = topo;
      t.num_slots = c.layout->num_slots;
      if (status s = validate_topology(t); !s.ok())
        return error{s.code(), c.name + ": " + s.message()};
      if (status s = validate_placement(*c.layout, t); !s.ok()) {
        return error{s.code(), c.name + ": " + s.message()};
      }
      st.report.num_slots = t.num_slots;
      st.report.replicas = replica_counts(*c.layout);
      st.table.build(*c.layout, topo.num_ranks);
      st.same_as_bound = t.num_slots == topo.num_slots;
    } else {
      st.report.recorded = true;
      st.fixed = false;
      st.report.num_ranks = 0;  // from the first record
    }
    st.mean_sum.assign(L, 0.0);
    st.layer_ratio_sum.assign(L, 0.0);
    st.layer_steps.assign(L, 0);
    p->cands.push_back(std::move(st));
  }
  p->logical = load_matrix::Zero(topo.num_layers, topo.num_experts);
  p->logical_sum = load_matrix::Zero(topo.num_layers, topo.num_experts);
  p->totals.resize(L);
  return replayer(std::move(p));
}

status replayer::on_record(const stats_record& record) { return impl_->replay(record); }

void replayer::impl::merge_buckets() {
  // Halve the resolution: bucket j takes buckets 2j and 2j+1, so the series stays bounded.
  const int half = (bucket_count + 1) / 2;
  const auto L = static_cast<std::size_t>(topo.num_layers);
  for (candidate_state& c : cands) {
    for (int j = 0; j < half; ++j) {
      const auto a = static_cast<std::size_t>(2 * j);
      const auto b = a + 1;
      const auto d = static_cast<std::size_t>(j);
      const bool has_b = b < static_cast<std::size_t>(bucket_count);
      c.b_sum[d] = c.b_sum[a] + (has_b ? c.b_sum[b] : 0.0);
      c.b_max[d] = std::max(c.b_max[a], has_b ? c.b_max[b] : 0.0);
      c.b_count[d] = c.b_count[a] + (has_b ? c.b_count[b] : 0);
      for (std::size_t l = 0; l < L; ++l) {
        c.bl_sum[d * L + l] = c.bl_sum[a * L + l] + (has_b ? c.bl_sum[b * L + l] : 0.0);
        c.bl_max[d * L + l] = std::max(c.bl_max[a * L + l], has_b ? c.bl_max[b * L + l] : 0.0);
        c.bl_count[d * L + l] = c.bl_count[a * L + l] + (has_b ? c.bl_count[b * L + l] : 0);
      }
    }
    c.b_sum.resize(static_cast<std::size_t>(half));
    c.b_max.resize(static_cast<std::size_t>(half));
    c.b_count.resize(static_cast<std::size_t>(half));
    c.bl_sum.resize(static_cast<std::size_t>(half) * L);
    c.bl_max.resize(static_cast<std::size_t>(half) * L);
    c.bl_count.resize(static_cast<std::size_t>(half) * L);
  }
  bucket_count = half;
  bucket_width *= 2;
}

template <class M>
double replayer::impl::sum_bound(const M& logical_loads, std::vector<double>& weights) const {
  // Duplicates allowed: the bound then holds for every placement, vLLM's included.
  bound_options bo;
  bo.forbid_duplicates = false;
  bo.exact_knapsack = false;
  weights.resize(static_cast<std::size_t>(topo.num_experts));
  double sum = 0;
  for (int l = 0; l < topo.num_layers; ++l) {
    for (int e = 0; e < topo.num_experts; ++e) {
      weights[static_cast<std::size_t>(e)] = static_cast<double>(logical_loads(l, e));
    }
    sum += lower_bound_layer(weights.data(), topo.num_experts, topo.num_slots, topo.num_ranks, bo)
               .best;
  }
  return sum;
}

std::vector<double> replayer::impl::retained_bounds() const {
  std::vector<double> out(bound_loads.size());
  std::atomic<std::size_t> next{0};
  auto worker = [&]() {
    std::vector<double> weights;
    for (std::size_t i = next++; i < out.size(); i = next++)
      out[i] = sum_bound(bound_loads[i], weights);
  };
  int n = opt.threads > 0 ? opt.threads : static_cast<int>(std::thread::hardware_concurrency());
  n = std::clamp(n, 1, static_cast<int>(std::max<std::size_t>(out.size(), 1)));
  std::vector<std::thread> pool;
  for (int i = 1; i < n; ++i) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  return out;
}

status replayer::impl::replay(const stats_record& r) {
  const int L = topo.num_layers;
  const int E = topo.num_experts;
  if (r.num_layers != L || r.num_experts != E) {
    return make_error(errc::shape_mismatch, r.where, "",
                      cat("record has ", r.num_layers, " layers x ", r.num_experts,
                          " experts; the mappings have ", L, " x ", E));
  }
  logical.setZero();
  if (status s = fold_record(r, logical); !s.ok()) return s;
  if (status s = fold_record(r, logical_sum); !s.ok()) return s;  // reports overflow
  const std::size_t index = steps.size();
  steps.push_back(r.step);
  double sum_total = 0;
  for (int l = 0; l < L; ++l) {
    totals[static_cast<std::size_t>(l)] = static_cast<double>(logical.row(l).sum());
    sum_total += totals[static_cast<std::size_t>(l)];
  }

  step_total.push_back(sum_total);
  if (opt.bounds && opt.bound_steps == 0) {
    std::vector<double> weights;
    inline_bound.push_back(sum_bound(logical, weights));
  } else if (opt.bounds && bound_thin.wants(index)) {
    bound_index.push_back(index);
    bound_loads.push_back(logical.cast<float>());
    if (bound_thin.overflows(bound_loads.size())) {
      detail::thinning::keep_even(bound_index);
      detail::thinning::keep_even(bound_loads);
    }
  }

  // Bucket and sample bookkeeping shared by all candidates.
  auto bucket = static_cast<int>(index / static_cast<std::size_t>(bucket_width));
  if (bucket >= opt.series_buckets) {
    merge_buckets();
    bucket = static_cast<int>(index / static_cast<std::size_t>(bucket_width));
  }
  const bool new_bucket = bucket >= bucket_count;
  if (new_bucket) bucket_count = bucket + 1;
  const bool sample = sample_thin.wants(index);
  if (sample) sampled.push_back(r.step);

  const auto Lz = static_cast<std::size_t>(L);
  for (candidate_state& c : cands) {
    if (!c.fixed) {
      // The recorded map: ranks from the record (or its meta), rebuilt when the map changes.
      int ranks = r.num_ranks > 0 ? r.num_ranks : (r.meta ? r.meta->num_ranks : topo.num_ranks);
      if (c.report.num_ranks == 0) {
        c.report.num_ranks = ranks;
        c.rank_sum = weight_matrix::Zero(L, ranks);
        c.report.busiest_count.assign(static_cast<std::size_t>(std::max(ranks, 0)), 0);
      }
      if (ranks != c.report.num_ranks || ranks <= 0 || r.num_slots % ranks != 0) {
        return make_error(errc::shape_mismatch, r.where, "p2l_map",
                          cat("the recorded map has ", r.num_slots, " slots on ", ranks,
                              " ranks; the first judged record had ", c.report.num_ranks,
                              " ranks (slots must divide evenly)"));
      }
      const std::size_t n = static_cast<std::size_t>(L) * static_cast<std::size_t>(r.num_slots);
      if (c.last_p2l.size() != n ||
          std::memcmp(c.last_p2l.data(), r.p2l_map, n * sizeof(std::int32_t)) != 0) {
        placement p;
        p.num_layers = L;
        p.num_slots = r.num_slots;
        p.num_experts = E;
        p.physical_to_logical.assign(r.p2l_map, r.p2l_map + n);
        c.table.build(p, ranks);
        c.last_p2l = std::move(p.physical_to_logical);
      }
      c.report.num_slots = r.num_slots;
      c.same_as_bound = c.same_as_bound && r.num_slots == topo.num_slots && ranks == topo.num_ranks;
    } else if (c.rank_sum.size() == 0) {
      c.rank_sum = weight_matrix::Zero(L, topo.num_ranks);
      c.report.busiest_count.assign(static_cast<std::size_t>(topo.num_ranks), 0);
    }
    const int R = c.table.num_ranks();
    const auto Rz = static_cast<std::size_t>(R);
    loads.assign(Lz * Rz, 0.0);
    if (new_bucket) {
      c.b_sum.push_back(0.0);
      c.b_max.push_back(0.0);
      c.b_count.push_back(0);
      c.bl_sum.resize(c.bl_sum.size() + Lz, 0.0);
      c.bl_max.resize(c.bl_max.size() + Lz, 0.0);
      c.bl_count.resize(c.bl_count.size() + Lz, 0);
    }
    const auto b = static_cast<std::size_t>(bucket);
    double sum_max = 0;
    double sum_mean = 0;
    for (int l = 0; l < L; ++l) {
      const auto li = static_cast<std::size_t>(l);
      double* row = loads.data() + li * Rz;
      c.table.add_layer(l, logical.row(l).data(), row);
      const int top = detail::argmax(row, R);
      const double mx = row[top];
      const double mean = totals[li] / R;
      sum_max += mx;
      sum_mean += mean;
      c.mean_sum[li] += mean;
      for (int k = 0; k < R; ++k) c.rank_sum(l, k) += row[k];
      if (mean > 0) {
        const double ratio = mx / mean;
        c.layer_ratio_sum[li] += ratio;
        c.layer_steps[li] += 1;
        c.report.busiest_count[static_cast<std::size_t>(top)] += 1;
        c.bl_sum[b * Lz + li] += ratio;
        c.bl_max[b * Lz + li] = std::max(c.bl_max[b * Lz + li], ratio);
        c.bl_count[b * Lz + li] += 1;
      }
    }
    const double imb = sum_mean > 0 ? sum_max / sum_mean : 0.0;
    c.report.step_imbalance.push_back(imb);
    c.b_sum[b] += imb;
    c.b_max[b] = std::max(c.b_max[b], imb);
    c.b_count[b] += 1;
    c.sum_max.push_back(sum_max);
    if (sample) {
      for (int l = 0; l < L; ++l) {
        const double mean = totals[static_cast<std::size_t>(l)] / R;
        for (int k = 0; k < R; ++k) {
          const double v = loads[static_cast<std::size_t>(l) * Rz + static_cast<std::size_t>(k)];
          c.report.sampled_relative_load.push_back(static_cast<float>(mean > 0 ? v / mean : 0.0));
        }
      }
    }
  }
  if (sample && sample_thin.overflows(sampled.size())) {
    detail::thinning::keep_even(sampled);
    for (candidate_state& c : cands) {
      detail::thinning::keep_even(c.report.sampled_relative_load,
                                  Lz * static_cast<std::size_t>(c.table.num_ranks()));
    }
  }
  return status::success();
}

result<eval_result> replayer::finish() {
  impl& m = *impl_;
  if (m.steps.empty()) {
    return make_error(errc::no_records, position{}, "", "no eplb_load_stats record was judged");
  }
  eval_result out;
  out.topo = m.topo;
  out.steps = m.steps;
  out.expert_load = m.logical_sum;
  // The bound on the retained steps (or every step), then each step's bound imbalance.
  std::vector<std::size_t> bound_index = m.bound_index;
  std::vector<double> bound_sum;
  if (m.opt.bounds && m.opt.bound_steps == 0) {
    bound_sum = m.inline_bound;
    bound_index.resize(m.steps.size());
    for (std::size_t i = 0; i < bound_index.size(); ++i) bound_index[i] = i;
  } else if (m.opt.bounds) {
    bound_sum = m.retained_bounds();
  }
  for (std::size_t i = 0; i < bound_index.size(); ++i) {
    const double sum_mean = m.step_total[bound_index[i]] / m.topo.num_ranks;
    out.bound_steps.push_back(m.steps[bound_index[i]]);
    out.step_bound.push_back(sum_mean > 0 ? bound_sum[i] / sum_mean : 0.0);
  }
  if (m.opt.bounds) out.bound = summarize_steps(out.step_bound, out.bound_steps);
  out.buckets.width = m.bucket_width;
  out.buckets.count = m.bucket_count;
  for (int b = 0; b < m.bucket_count; ++b) {
    out.bucket_first_step.push_back(m.steps[static_cast<std::size_t>(b) * m.bucket_width]);
  }
  out.sampled_steps = m.sampled;
  const auto L = static_cast<std::size_t>(m.topo.num_layers);
  for (candidate_state& c : m.cands) {
    candidate_report r = std::move(c.report);
    r.imbalance = summarize_steps(r.step_imbalance, m.steps);
    if (m.opt.bounds && c.same_as_bound) {
      for (std::size_t i = 0; i < bound_index.size(); ++i) {
        const double mx = c.sum_max[bound_index[i]];
        r.step_gap.push_back(bound_sum[i] > 0 ? mx / bound_sum[i] - 1.0 : 0.0);
      }
      r.gap = summarize_steps(r.step_gap, out.bound_steps);
    }
    r.layer_mean_imbalance.resize(L);
    const int R = r.num_ranks;
    r.relative_rank_load = weight_matrix::Zero(static_cast<Eigen::Index>(L), R);
    std::vector<double> rank_total(static_cast<std::size_t>(R), 0.0);
    double all = 0;
    for (std::size_t l = 0; l < L; ++l) {
      r.layer_mean_imbalance[l] =
          c.layer_steps[l] > 0 ? c.layer_ratio_sum[l] / static_cast<double>(c.layer_steps[l]) : 0;
      for (int k = 0; k < R; ++k) {
        const double v = c.rank_sum(static_cast<Eigen::Index>(l), k);
        r.relative_rank_load(static_cast<Eigen::Index>(l), k) =
            c.mean_sum[l] > 0 ? v / c.mean_sum[l] : 0;
        rank_total[static_cast<std::size_t>(k)] += v;
        all += v;
      }
    }
    r.rank_share.resize(static_cast<std::size_t>(R));
    for (int k = 0; k < R; ++k) {
      r.rank_share[static_cast<std::size_t>(k)] =
          all > 0 ? rank_total[static_cast<std::size_t>(k)] * R / all : 0;
    }
    r.busiest_count.resize(static_cast<std::size_t>(R), 0);
    for (std::size_t b = 0; b < static_cast<std::size_t>(m.bucket_count); ++b) {
      r.bucket_mean.push_back(c.b_count[b] > 0 ? c.b_sum[b] / c.b_count[b] : 0.0);
      r.bucket_max.push_back(c.b_max[b]);
      for (std::size_t l = 0; l < L; ++l) {
        const std::size_t i = b * L + l;
        r.bucket_layer_mean.push_back(
            static_cast<float>(c.bl_count[i] > 0 ? c.bl_sum[i] / c.bl_count[i] : 0.0));
        r.bucket_layer_max.push_back(static_cast<float>(c.bl_max[i]));
      }
    }
    out.candidates.push_back(std::move(r));
  }
  return out;
}

step_distribution summarize_steps(const std::vector<double>& values,
                                  const std::vector<std::int64_t>& steps) {
  step_distribution d;
  if (values.empty()) return d;
  double sum = 0;
  std::size_t worst = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    sum += values[i];
    if (values[i] > values[worst]) worst = i;
  }
  d.mean = sum / static_cast<double>(values.size());
  d.worst = values[worst];
  d.worst_step = worst < steps.size() ? steps[worst] : 0;
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) {
    // Nearest rank: the ceil(p/100 * n)-th smallest value.
    const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
    const auto i = static_cast<std::size_t>(std::max(1.0, rank)) - 1;
    return sorted[std::min(i, sorted.size() - 1)];
  };
  d.p50 = pct(50);
  d.p90 = pct(90);
  d.p99 = pct(99);
  return d;
}

double predicted_time_saved(double f, double imbalance, double identity_imbalance) {
  if (!(identity_imbalance > 0)) return 0.0;
  return f * (1.0 - imbalance / identity_imbalance);
}

}  // namespace eplb
