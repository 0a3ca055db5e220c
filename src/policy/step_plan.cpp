// Planning for the steps the server will run (plan_for_steps in include/eplb/policy.hpp), and the
// one planning entry, plan_placement.
//
// Why this shape. On summed loads many placements reach the lower bound, and an optimizer that
// only sees the sum may pick a fragile one (a hot expert alone on a rank takes its per-step noise
// and drift with it). vLLM's policy gives hot experts replicas by D'Hondt, so its largest replica
// is small, which is what held-out steps reward; what the sum cannot show is which experts are
// hot in the same steps. So the planner keeps deepseek's counts and packing as the start and lets
// a search over the sampled steps themselves decide which slots share a rank. Workloads drift,
// so the most recent steps may say more about the next ones than the old ones: variants that
// weigh recent steps more are planned on the first part of the train steps and the last part
// judges them, as held-out steps would.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "eplb/eval.hpp"
#include "eplb/metrics.hpp"
#include "eplb/policy.hpp"
#include "policy/balanced_detail.hpp"
#include "policy/parallel.hpp"
#include "policy/step_search.hpp"

namespace eplb {

namespace {

using sample_ptrs = std::vector<const sample_matrix*>;

std::string fixed(double x, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

// Mean and nearest-rank percentiles of the per-step imbalance of `p` on `samples`.
step_distribution judge(const std::vector<sample_matrix>& samples, const placement& p,
                        const topology& topo) {
  return summarize_steps(step_imbalances(samples, p, topo), {});
}

// The samples a variant is planned on, each with its recency weight.
struct weighted_samples {
  sample_ptrs loads;
  std::vector<double> recency;
};

// Weights halving every `half_life` (a fraction of the window) records before the window's end.
weighted_samples weigh(const step_samples& all, std::uint64_t begin, std::uint64_t end,
                       double half_life, std::size_t cap) {
  weighted_samples out;
  std::vector<std::size_t> in;
  for (std::size_t i = 0; i < all.loads.size(); ++i) {
    if (all.index[i] >= begin && all.index[i] < end) in.push_back(i);
  }
  // Thin evenly (every other one) to at most `cap` samples.
  std::size_t stride = 1;
  while (cap > 0 && (in.size() + stride - 1) / stride > cap) stride *= 2;
  const double window = static_cast<double>(end - begin);
  for (std::size_t j = 0; j < in.size(); j += stride) {
    const std::size_t i = in[j];
    out.loads.push_back(&all.loads[i]);
    const double age = static_cast<double>(end - 1 - all.index[i]);
    out.recency.push_back(half_life > 0 ? std::exp2(-age / (half_life * window)) : 1.0);
  }
  return out;
}

// (sum of weights)^2 / sum of squared weights: how many equally weighted samples they are worth.
double effective_samples(const std::vector<double>& w) {
  double a = 0, b = 0;
  for (double x : w) {
    a += x;
    b += x * x;
  }
  return b > 0 ? a * a / b : 0.0;
}

weight_matrix weighted_sum(const weighted_samples& s, int layers, int experts) {
  weight_matrix w = weight_matrix::Zero(layers, experts);
  for (std::size_t i = 0; i < s.loads.size(); ++i) w += s.recency[i] * s.loads[i]->cast<double>();
  return w;
}

// What every variant shares: the topology and the policy options.
struct planner_context {
  const topology& topo;
  const policy_options& options;
  const step_plan_options& step;
  int workers;
};

// deepseek's placement for `weights` in the requested node-grouping mode (`automatic` follows
// vLLM; `on` where vLLM's hierarchical policy cannot run is deepseek's error), with its info.
result<placement> deepseek_start(const weight_matrix& weights, const planner_context& c,
                                 plan_info* info) {
  return rebalance_deepseek(weights, c.topo, c.options.hierarchical, info);
}

// Per-layer scratch of a worker.
struct worker_state {
  detail::step_search search;
  detail::local_search local;
  std::vector<double> x, total, share;
  std::vector<std::int32_t> row, aligned;
};

// Gathers layer l of the samples into ws.x ([E][S]). With spike_cap > 0, an expert's share of a
// sample's layer load is capped at spike_cap times its 95th percentile over the samples: a spike
// on one expert for a few steps is not expected to come back on the same expert, and a search
// that plans around it over-fits (the server meets other experts' spikes instead).
void fill_layer(const weighted_samples& s, int l, int E, double spike_cap, worker_state& ws) {
  const std::size_t S = s.loads.size();
  ws.x.resize(static_cast<std::size_t>(E) * S);
  ws.total.assign(S, 0.0);
  for (std::size_t i = 0; i < S; ++i) {
    const sample_matrix& m = *s.loads[i];
    for (int e = 0; e < E; ++e) {
      ws.x[static_cast<std::size_t>(e) * S + i] = m(l, e);
      ws.total[i] += m(l, e);
    }
  }
  if (spike_cap <= 0 || S < 20) return;
  ws.share.resize(S);
  for (int e = 0; e < E; ++e) {
    double* x = ws.x.data() + static_cast<std::size_t>(e) * S;
    for (std::size_t i = 0; i < S; ++i) ws.share[i] = ws.total[i] > 0 ? x[i] / ws.total[i] : 0.0;
    const auto q = static_cast<std::size_t>(0.95 * static_cast<double>(S - 1));
    std::nth_element(ws.share.begin(), ws.share.begin() + static_cast<std::ptrdiff_t>(q),
                     ws.share.end());
    const double cap = spike_cap * ws.share[q];
    for (std::size_t i = 0; i < S; ++i) x[i] = std::min(x[i], cap * ws.total[i]);
  }
}

// Each sample's weight: its recency over its mean rank load summed over layers, so summing the
// layers' objectives gives the recency-weighted mean of the per-step imbalance.
std::vector<double> sample_weights(const weighted_samples& s, int ranks) {
  std::vector<double> weight(s.loads.size(), 0.0);
  for (std::size_t i = 0; i < s.loads.size(); ++i) {
    const double mean = static_cast<double>(s.loads[i]->sum()) / ranks;
    weight[i] = mean > 0 ? s.recency[i] / mean : 0.0;
  }
  return weight;
}

// Plans one variant on `s`: deepseek's placement of `sums`, duplicates moved away, then the slot
// search on the samples. `hierarchical` gets whether the start was node-grouped.
result<placement> plan_variant(const weighted_samples& s, const weight_matrix& sums,
                               const planner_context& c, std::vector<worker_state>& state,
                               plan_info* ds_info) {
  plan_info local_info;
  plan_info& di = ds_info != nullptr ? *ds_info : local_info;
  auto start = deepseek_start(sums, c, &di);
  if (!start) return start.err();
  const topology& t = c.topo;
  const int L = t.num_layers, E = t.num_experts, R = t.num_ranks, k = t.slots_per_rank();
  placement out = std::move(*start);
  if (k > E) return out;  // every rank holds more slots than there are experts: keep deepseek's
  const std::size_t S = s.loads.size();
  const std::vector<double> weight = sample_weights(s, R);
  const bool pinned = di.hierarchical && t.num_nodes > 1;
  const int block = pinned ? R / t.num_nodes : R;
  const bool ok = detail::for_each_layer(L, c.workers, [&](int l, int worker) {
    worker_state& ws = state[static_cast<std::size_t>(worker)];
    const detail::layer_view lv{sums.row(l).data(), E, R, k};
    if (!detail::make_duplicate_free(lv, out.row(l), ws.local, ws.row, pinned ? block : 0)) {
      return;  // keeps deepseek's layer
    }
    fill_layer(s, l, E, c.step.spike_cap, ws);
    const detail::step_layer sl{ws.x.data(), weight.data(), E, static_cast<int>(S), R, k};
    ws.search.reset(sl, ws.row.data(), block, pinned);
    ws.search.improve(c.step.max_passes, false, 0);
    std::copy(ws.search.slots().begin(), ws.search.slots().end(), out.row(l));
  });
  if (!ok) return make_error(errc::internal, position{}, "policy", "out of memory while planning");
  return out;
}

// deepseek's placement of `sums` with second replicas of an expert on a rank moved to other ranks
// (where that keeps the layer's max lowest): what the guard keeps when the search over-fits.
result<placement> safe_deepseek(const weight_matrix& sums, const planner_context& c,
                                std::vector<worker_state>& state, plan_info* ds_info) {
  plan_info di;
  auto ds = deepseek_start(sums, c, &di);
  if (!ds) return ds.err();
  if (ds_info != nullptr) *ds_info = di;
  placement p = std::move(*ds);
  const topology& t = c.topo;
  if (t.slots_per_rank() > t.num_experts) return p;
  // A node-grouped placement keeps every expert on its node.
  const int block = di.hierarchical && t.num_nodes > 1 ? t.num_ranks / t.num_nodes : 0;
  const bool ok = detail::for_each_layer(t.num_layers, c.workers, [&](int l, int worker) {
    worker_state& ws = state[static_cast<std::size_t>(worker)];
    const detail::layer_view lv{sums.row(l).data(), t.num_experts, t.num_ranks, t.slots_per_rank()};
    if (detail::count_duplicates(lv, p.row(l)) == 0) return;
    if (detail::make_duplicate_free(lv, p.row(l), ws.local, ws.row, block)) {
      std::copy(ws.row.begin(), ws.row.end(), p.row(l));
    }
  });
  if (!ok) return make_error(errc::internal, position{}, "policy", "out of memory while planning");
  return p;
}

// Keeps the plan's balance and changes as few slots of `previous` as possible: ranks are matched
// to the previous ranks (inside nodes when node-grouped) and experts that stay keep their slot.
// With a cap, a layer still over it is searched from `previous` within the cap instead.
status migrate(placement& plan, const placement& previous, const weighted_samples& s,
               const weight_matrix& sums, const planner_context& c, bool pinned,
               std::vector<worker_state>& state, std::vector<int>& moves) {
  const topology& t = c.topo;
  const int L = t.num_layers, E = t.num_experts, R = t.num_ranks, k = t.slots_per_rank();
  const int P = t.num_slots;
  const std::size_t S = s.loads.size();
  const std::vector<double> weight = sample_weights(s, R);
  const int block = pinned ? R / t.num_nodes : R;
  moves.assign(static_cast<std::size_t>(L), 0);
  const int cap = c.options.max_moves;
  const bool ok = detail::for_each_layer(L, c.workers, [&](int l, int worker) {
    worker_state& ws = state[static_cast<std::size_t>(worker)];
    const detail::layer_view lv{sums.row(l).data(), E, R, k};
    ws.aligned.resize(static_cast<std::size_t>(P));
    int m = detail::align_to_previous(lv, plan.row(l), previous.row(l), block, ws.aligned.data());
    if (cap >= 0 && m > cap) {
      // Search from the deployed layer and never past the cap: swaps, and re-splits, since the
      // deployed counts may be far from any good plan's. A deployed layer that holds an expert
      // twice on a rank keeps the duplicates the cap leaves no room to move.
      fill_layer(s, l, E, c.step.spike_cap, ws);
      const detail::step_layer sl{ws.x.data(), weight.data(), E, static_cast<int>(S), R, k};
      ws.search.reset(sl, previous.row(l), R, false, previous.row(l));
      ws.search.improve(c.step.max_passes, true, 16, cap);
      std::copy(ws.search.slots().begin(), ws.search.slots().end(), ws.aligned.begin());
      m = ws.search.changed();
    }
    std::copy(ws.aligned.begin(), ws.aligned.end(), plan.row(l));
    moves[static_cast<std::size_t>(l)] = m;
  });
  if (!ok) return make_error(errc::internal, position{}, "policy", "out of memory while migrating");
  return status::success();
}

// The held-out split of the train records: the sampled steps of the last validation_fraction of
// them (index >= cut) judge, the samples before them are planned on.
struct heldout_split {
  std::uint64_t cut = 0;
  std::vector<sample_matrix> validation;
};

// Splits `samples`; with at least min_samples samples on both sides `est` gets the counts and is
// marked available, otherwise its note says why there is no estimate.
heldout_split split_heldout(const step_samples& samples, const step_plan_options& step,
                            heldout_estimate& est) {
  heldout_split h;
  const std::uint64_t n = samples.records;
  h.cut = static_cast<std::uint64_t>((1.0 - step.validation_fraction) * static_cast<double>(n));
  std::size_t fit_count = 0;
  for (std::size_t i = 0; i < samples.loads.size(); ++i) {
    if (samples.index[i] >= h.cut) {
      h.validation.push_back(samples.loads[i]);
    } else {
      ++fit_count;
    }
  }
  if (static_cast<int>(fit_count) < step.min_samples ||
      static_cast<int>(h.validation.size()) < step.min_samples) {
    est.note = "too few train steps (" + std::to_string(n) +
               " records) to hold any out: no held-out estimate";
    return h;
  }
  est.available = true;
  est.fit_records = h.cut;
  est.validation_records = n - h.cut;
  est.validation_samples = h.validation.size();
  return h;
}

error no_samples_error() {
  return make_error(errc::invalid_argument, position{}, "--objective",
                    "per-step needs per-step records (vLLM stats); this input holds sums only");
}

std::string half_life_text(double h) {
  return h > 0 ? "recent steps weighted (half-life " + fixed(100 * h, 0) + "% of the window)"
               : "all steps weighted alike";
}

}  // namespace

result<placement> plan_for_steps(const weight_matrix& sums, const step_samples& samples,
                                 const topology& topo, const policy_options& options,
                                 const step_plan_options& step, plan_info* info) {
  plan_info local_info;
  plan_info& out = info != nullptr ? *info : local_info;
  out = plan_info{};
  out.policy = policy_name(options.kind);
  out.objective = "per-step";
  if (samples.loads.empty()) return no_samples_error();
  if (options.previous != nullptr) {
    if (status s = validate_placement(*options.previous, topo); !s.ok()) {
      return make_error(errc::invalid_argument, position{}, "previous placement", s.message());
    }
  }
  planner_context c{topo, options, step, detail::worker_count(options.threads, topo.num_layers)};
  // A worker's search holds about (E + P + 3 EP) doubles per sample; huge shapes get fewer
  // samples so that it stays within 256 MiB.
  const auto per_sample = 8 * (static_cast<std::size_t>(topo.num_experts) + topo.num_slots +
                               3 * static_cast<std::size_t>(topo.num_ranks));
  const std::size_t cap = std::max<std::size_t>(8, (std::size_t{256} << 20) / per_sample);
  std::vector<worker_state> state(static_cast<std::size_t>(c.workers));
  const std::uint64_t n = samples.records;
  heldout_estimate& est = out.heldout;
  const heldout_split split = split_heldout(samples, step, est);
  const std::uint64_t cut = split.cut;
  const std::vector<sample_matrix>& validation = split.validation;
  // deepseek only may use recency weights: its policy is the sum policy.
  std::vector<double> half_lives = step.half_lives;
  if (options.kind == policy_kind::deepseek || half_lives.empty()) half_lives = {0.0};
  double chosen = half_lives.front();
  bool guard = false;
  int weightings_tried = 0;
  if (est.available) {
    // Every candidate is planned on the fit part and judged on the validation part: vLLM's
    // policy itself (the reference of the estimate), its placement made duplicate-free (the
    // guard's safe choice) and the search with each recency weighting.
    const weight_matrix fit_sums =
        weighted_sum(weigh(samples, 0, cut, 0.0, 0), topo.num_layers, topo.num_experts);
    auto ds_fit = deepseek_start(fit_sums, c, nullptr);
    if (!ds_fit) return ds_fit.err();
    const step_distribution ref = judge(validation, *ds_fit, topo);
    est.deepseek = ref.mean;
    est.deepseek_p99 = ref.p99;
    auto safe_fit = safe_deepseek(fit_sums, c, state, nullptr);
    if (!safe_fit) return safe_fit.err();
    step_distribution best = judge(validation, *safe_fit, topo);
    guard = true;
    for (double h : half_lives) {
      const weighted_samples fit =
          weigh(samples, 0, cut, h, std::min(static_cast<std::size_t>(step.fit_samples), cap));
      // Recency weights that leave too few effective samples, or too few validation steps to
      // tell the variants apart, would choose by noise.
      if (h > 0 && (effective_samples(fit.recency) < step.min_effective_samples ||
                    static_cast<int>(validation.size()) < step.min_effective_samples)) {
        continue;
      }
      auto p = plan_variant(fit, weighted_sum(fit, topo.num_layers, topo.num_experts), c, state,
                            nullptr);
      if (!p) return p.err();
      ++weightings_tried;
      const step_distribution f = judge(validation, *p, topo);
      if (f.mean < best.mean) {
        best = f;
        chosen = h;
        guard = false;
      }
    }
    est.plan = best.mean;
    est.plan_p99 = best.p99;
  }
  // The final plan, on all samples.
  const weighted_samples all =
      weigh(samples, 0, n, chosen,
            std::min(static_cast<std::size_t>(std::max(step.final_samples, 1)), cap));
  // With uniform weights the exact sums of every train record beat the sample's.
  const weight_matrix final_sums =
      chosen > 0 && !guard ? weighted_sum(all, topo.num_layers, topo.num_experts) : sums;
  plan_info ds_info;
  // The guard: the search did not beat deepseek's own placement on steps it had not seen
  // (over-fitting), so that placement is kept.
  result<placement> plan = guard ? safe_deepseek(sums, c, state, &ds_info)
                                 : plan_variant(all, final_sums, c, state, &ds_info);
  if (!plan) return plan.err();
  if (guard) {
    out.step_note =
        "the search did not beat vLLM's policy on the validation steps: its "
        "placement is kept (duplicates moved apart)";
  } else {
    out.step_note = "deepseek's replica counts, slots searched on " +
                    std::to_string(all.loads.size()) + " sampled steps, " + half_life_text(chosen) +
                    (weightings_tried > 1 ? " (the best of " + std::to_string(weightings_tried) +
                                                " weightings on the validation steps)"
                     : half_lives.size() > 1 ? " (too few steps to try recency weights)"
                                             : "");
  }
  out.step_half_life = guard ? -1.0 : chosen;
  out.hierarchical = ds_info.hierarchical;
  // Where the start came from: deepseek's branch (node-grouped or global) and why.
  out.note = topo.num_nodes == 1 ? "1 node: global plan" : "deepseek's branch: " + ds_info.note;
  if (topo.slots_per_rank() > topo.num_experts) {
    out.note += "; slots per rank exceed the experts: duplicate replicas cannot be avoided";
  }
  if (options.previous != nullptr) {
    const bool pinned = ds_info.hierarchical && topo.num_nodes > 1;
    if (status s = migrate(*plan, *options.previous, all, final_sums, c, pinned, state,
                           out.moves_per_layer);
        !s.ok()) {
      return s.err();
    }
  }
  return plan;
}

result<placement> plan_placement(const weight_matrix& sums, const step_samples* samples,
                                 const topology& topo, const policy_options& options,
                                 plan_info* info) {
  const bool have_samples = samples != nullptr && !samples->loads.empty();
  const objective_kind objective = options.objective.value_or(
      options.kind == policy_kind::balanced && have_samples ? objective_kind::per_step
                                                            : objective_kind::sum);
  if (info != nullptr) *info = plan_info{};
  if (objective == objective_kind::per_step) {
    if (!have_samples) return no_samples_error();
    return plan_for_steps(sums, *samples, topo, options, step_plan_options{}, info);
  }
  auto p = rebalance(sums, topo, options, info);
  if (!p || info == nullptr) return p;
  info->objective = "sum";
  // The held-out estimate of the sum policy: planned on the fit part's sums, judged per step on
  // the validation part, beside deepseek planned the same way.
  heldout_estimate& est = info->heldout;
  const step_plan_options step;
  if (!have_samples) {
    est.note = "no per-step records: no held-out estimate";
    return p;
  }
  const heldout_split split = split_heldout(*samples, step, est);
  if (!est.available) return p;
  const weight_matrix fit =
      weighted_sum(weigh(*samples, 0, split.cut, 0.0, 0), topo.num_layers, topo.num_experts);
  policy_options quiet = options;
  quiet.previous = nullptr;
  quiet.max_moves = -1;
  auto mine = rebalance(fit, topo, quiet, nullptr);
  if (!mine) return mine.err();
  policy_options ds = quiet;
  ds.kind = policy_kind::deepseek;
  auto ref = rebalance(fit, topo, ds, nullptr);
  if (!ref) {
    ds.hierarchical = hierarchical_mode::off;
    ref = rebalance(fit, topo, ds, nullptr);
  }
  if (!ref) return ref.err();
  const step_distribution a = judge(split.validation, *mine, topo);
  const step_distribution b = judge(split.validation, *ref, topo);
  est.plan = a.mean;
  est.plan_p99 = a.p99;
  est.deepseek = b.mean;
  est.deepseek_p99 = b.p99;
  return p;
}

}  // namespace eplb
