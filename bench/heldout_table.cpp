// Held-out benchmark: every placement judged on steps it has not seen. For each Qwen counts file
// in ../shared/data/qwen (24 evenly spaced layers of each model) and each kind of trace, a trace
// of 1,000 steps is synthesized in-process (256-8192 tokens per step, top-8) with three seeds;
// every policy plans on the first half and is judged step by step on the second half:
//   identity      vLLM's startup layout
//   deepseek      vLLM's DefaultEplbPolicy (--policy deepseek), the reference
//   in-sample     --policy balanced --objective sum (the in-sample optimizer)
//   default       eplb-gen's default (the step-aware planner)
//   floor         the hindsight floor: the best static mapping eplb-gen finds when planned on the
//                 judged steps themselves (deepseek, deepseek + the per-step search, and the
//                 default), each planned on every other judged step and judged on the others
//                 (cross-fitted: planning on a step and judging on the same step would count
//                 that step's sampling noise as foreseeable)
//   closed        (deepseek - default) / (deepseek - floor), for cells where that distance is
//                 at least 0.002
// Kinds: stationary; slow drift (each expert's log-weight an AR(1) walk, std 0.3, time constant
// 2,000 steps); regime switches (two workload mixes alternating every 50 steps, different
// experts hot); bursts (per step and layer a 1% chance that a random expert runs 8x hotter for 10
// steps). With --stress also: fast drift (time constant 500 steps, the setting of synth's
// default --drift-speed) and heavy bursts (5%, 10x, 10 steps).
// Topologies: EP 8 (1 node) with 16 and 64 redundant slots, EP 16 (2 nodes) with 32, EP 32 (4
// nodes) with 32 and 64.
//
// Usage: eplb-bench-heldout [--shared DIR] [--model NAME] [--kind NAME] [--seeds N] [--steps N]
//                           [--layers N] [--ep EP R] [--stress] [--per-seed] [--quick]

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/eval.hpp"
#include "eplb/metrics.hpp"
#include "eplb/policy.hpp"
#include "eplb/synth.hpp"

using namespace eplb;

namespace {

// Keeps every record's logical loads (24 layers x 128 experts x 1,000 steps: 12 MB).
struct trace_sink final : stats_sink {
  std::vector<sample_matrix> steps;
  load_matrix tmp;
  status on_record(const stats_record& r) override {
    if (tmp.rows() != r.num_layers) tmp = load_matrix::Zero(r.num_layers, r.num_experts);
    tmp.setZero();
    if (status s = fold_record(r, tmp); !s.ok()) return s;
    steps.push_back(tmp.cast<float>());
    return status::success();
  }
};

step_distribution judge(const std::vector<sample_matrix>& steps, const placement& p,
                        const topology& t) {
  return summarize_steps(step_imbalances(steps, p, t), {});
}

weight_matrix sum_of(const std::vector<sample_matrix>& s) {
  weight_matrix w = weight_matrix::Zero(s[0].rows(), s[0].cols());
  for (const auto& m : s) w += m.cast<double>();
  return w;
}

// What the plan pipeline's step sampler would keep of these records: evenly spaced, <= 512.
step_samples as_samples(const std::vector<sample_matrix>& v) {
  step_samples s;
  std::size_t stride = 1;
  while ((v.size() + stride - 1) / stride > 512) stride *= 2;
  for (std::size_t i = 0; i < v.size(); i += stride) {
    s.loads.push_back(v[i]);
    s.index.push_back(i);
  }
  s.records = v.size();
  return s;
}

struct kind {
  const char* name;
  bool stress;
  double drift, drift_speed, burst_prob, burst_factor;
  int burst_steps, regime_steps;
};

struct cell {
  double identity = 0, deepseek = 0, in_sample = 0, plan = 0, floor = 0;
  double deepseek_p99 = 0, plan_p99 = 0, deepseek_ms = 0, plan_ms = 0;
  double half_life = 0;
  bool counted() const { return deepseek - floor >= 0.002; }
  double closed() const { return (deepseek - plan) / (deepseek - floor); }
  bool worse() const { return plan > deepseek + 0.0005; }
};

template <class F>
double timed_ms(F&& f) {
  const auto a = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
}

placement must(result<placement> r) {
  if (!r) {
    fmt::print(stderr, "error: {}\n", r.message());
    std::exit(1);
  }
  return std::move(*r);
}

cell run_cell(const std::vector<sample_matrix>& train, const std::vector<sample_matrix>& judged,
              const topology& t) {
  cell c;
  policy_options ds;
  ds.kind = policy_kind::deepseek;
  policy_options in_sample;
  in_sample.objective = objective_kind::sum;
  policy_options def;
  policy_options ds_steps = ds;
  ds_steps.objective = objective_kind::per_step;
  const weight_matrix sums = sum_of(train);
  const step_samples ts = as_samples(train);
  placement p_ds, p_def;
  c.deepseek_ms = timed_ms([&] { p_ds = must(plan_placement(sums, nullptr, t, ds)); });
  plan_info info;
  c.plan_ms = timed_ms([&] { p_def = must(plan_placement(sums, &ts, t, def, &info)); });
  c.half_life = info.step_half_life;
  const step_distribution fi = judge(judged, identity_placement(t), t);
  const step_distribution fd = judge(judged, p_ds, t);
  const step_distribution fp = judge(judged, p_def, t);
  c.identity = fi.mean;
  c.deepseek = fd.mean;
  c.deepseek_p99 = fd.p99;
  c.plan = fp.mean;
  c.plan_p99 = fp.p99;
  c.in_sample = judge(judged, must(plan_placement(sums, nullptr, t, in_sample)), t).mean;
  // The hindsight floor, cross-fitted over even and odd judged steps.
  std::vector<sample_matrix> half[2];
  for (std::size_t i = 0; i < judged.size(); ++i) half[i % 2].push_back(judged[i]);
  c.floor = 1e300;
  for (const policy_options* o : {&ds, &ds_steps, &def}) {
    double total = 0;
    for (int h = 0; h < 2; ++h) {
      const step_samples hs = as_samples(half[h]);
      const placement p = must(plan_placement(sum_of(half[h]), &hs, t, *o));
      total += judge(half[1 - h], p, t).mean * static_cast<double>(half[1 - h].size());
    }
    c.floor = std::min(c.floor, total / static_cast<double>(judged.size()));
  }
  return c;
}

std::string pct(double x) { return fmt::format("{:.0f}%", 100 * x); }

}  // namespace

int main(int argc, char** argv) {
  std::string shared = EPLB_SHARED_DIR;
  int steps = 1000, layers = 24, num_seeds = 3;
  bool stress = false, per_seed = false;
  std::vector<std::string> models = {"qwen3-235b", "qwen3-30b", "qwen2-57b"};
  std::vector<std::string> kinds_wanted;
  std::vector<std::pair<int, int>> settings = {{8, 16}, {8, 64}, {16, 32}, {32, 32}, {32, 64}};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool more = i + 1 < argc;
    if (a == "--shared" && more) {
      shared = argv[++i];
    } else if (a == "--model" && more) {
      models = {argv[++i]};
    } else if (a == "--kind" && more) {
      kinds_wanted.push_back(argv[++i]);
    } else if (a == "--seeds" && more) {
      num_seeds = std::atoi(argv[++i]);
    } else if (a == "--steps" && more) {
      steps = std::atoi(argv[++i]);
    } else if (a == "--layers" && more) {
      layers = std::atoi(argv[++i]);
    } else if (a == "--ep" && i + 2 < argc) {
      settings = {{std::atoi(argv[i + 1]), std::atoi(argv[i + 2])}};
      i += 2;
    } else if (a == "--stress") {
      stress = true;
    } else if (a == "--per-seed") {
      per_seed = true;
    } else if (a == "--quick") {
      num_seeds = 1;
      layers = 12;
    } else {
      fmt::print(stderr, "unknown argument {}\n", a);
      return 2;
    }
  }
  const kind kinds[] = {
      {"stationary", false, 0, 0.002, 0, 8, 10, 0},
      {"slow drift", false, 0.3, 0.0005, 0, 8, 10, 0},
      {"regimes", false, 0, 0.002, 0, 8, 10, 50},
      {"bursts", false, 0, 0.002, 0.01, 8, 10, 0},
      {"fast drift", true, 0.3, 0.002, 0, 8, 10, 0},
      {"heavy bursts", true, 0, 0.002, 0.05, 10, 10, 0},
  };
  const char* files[][2] = {{"qwen3-235b", "qwen3_235b_a22b_counts.json"},
                            {"qwen3-30b", "qwen3_30b_a3b_counts.json"},
                            {"qwen2-57b", "qwen2_57b_a14b_counts.json"}};
  const auto t0 = std::chrono::steady_clock::now();
  fmt::print(
      "{} steps per trace (256-8192 tokens per step, top-8), {} seed(s), {} evenly spaced layers "
      "per model; plan on the first half, judge every step of the second. Mean per-step "
      "imbalance (lower is better), means over the seeds.\n\n",
      steps, num_seeds, layers);
  if (per_seed) {
    fmt::print(
        "| model | trace | seed | EP | R | identity | deepseek | in-sample | default | floor "
        "| closed | p99 deepseek | p99 default | half-life |\n");
    fmt::print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  } else {
    fmt::print(
        "| model | trace | EP | R | identity | deepseek | in-sample opt. | default | "
        "hindsight floor | gap closed | p99 deepseek | p99 default | default worse | plan "
        "ms deepseek / default |\n");
    fmt::print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  }
  struct tally {
    int cells = 0, counted = 0, worse = 0;
    double closed = 0, worst_excess = -1e300;
  };
  std::map<bool, tally> totals;  // by stress
  double ds_ms = 0, def_ms = 0;
  int rows = 0;
  for (const auto& f : files) {
    if (std::find(models.begin(), models.end(), f[0]) == models.end()) continue;
    auto full = read_counts_json(shared + "/data/qwen/" + f[1]);
    if (!full) {
      fmt::print(stderr, "note: {} (the Qwen counts live in ../shared; skipped)\n", full.message());
      continue;
    }
    const int L = std::min<int>(layers, static_cast<int>(full->rows()));
    weight_matrix dist(L, full->cols());
    for (int l = 0; l < L; ++l) dist.row(l) = full->row(l * full->rows() / L);
    const int E = static_cast<int>(dist.cols());
    for (const kind& kd : kinds) {
      if (kd.stress && !stress) continue;
      if (!kinds_wanted.empty() &&
          std::find(kinds_wanted.begin(), kinds_wanted.end(), kd.name) == kinds_wanted.end()) {
        continue;
      }
      std::vector<std::vector<cell>> by_setting(settings.size());
      for (int seed = 1; seed <= num_seeds; ++seed) {
        synth_options o;
        o.num_steps = steps;
        o.drift = kd.drift;
        o.drift_speed = kd.drift_speed;
        o.burst_prob = kd.burst_prob;
        o.burst_factor = kd.burst_factor;
        o.burst_steps = kd.burst_steps;
        o.regime_steps = kd.regime_steps;
        o.seed = static_cast<std::uint64_t>(seed);
        o.recording = topology{L, E, E, 8, 1, 1};
        trace_sink tr;
        if (status s = synthesize_records(dist, o, tr); !s.ok()) {
          fmt::print(stderr, "error: {}\n", s.message());
          return 1;
        }
        const auto mid = tr.steps.begin() + static_cast<std::ptrdiff_t>(tr.steps.size() / 2);
        const std::vector<sample_matrix> train(tr.steps.begin(), mid), judged(mid, tr.steps.end());
        for (std::size_t si = 0; si < settings.size(); ++si) {
          const auto [ep, red] = settings[si];
          if ((E + red) % ep != 0) continue;
          const topology t{L, E, E + red, ep, std::max(1, ep / 8), 1};
          const cell c = run_cell(train, judged, t);
          by_setting[si].push_back(c);
          tally& tl = totals[kd.stress];
          ++tl.cells;
          tl.worse += c.worse() ? 1 : 0;
          tl.worst_excess = std::max(tl.worst_excess, c.plan - c.deepseek);
          if (c.counted()) {
            ++tl.counted;
            tl.closed += c.closed();
          }
          ds_ms += c.deepseek_ms;
          def_ms += c.plan_ms;
          if (per_seed) {
            fmt::print(
                "| {} | {} | {} | {} | {} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {} | "
                "{:.4f} | {:.4f} | {} |\n",
                f[0], kd.name, seed, ep, red, c.identity, c.deepseek, c.in_sample, c.plan, c.floor,
                c.counted() ? pct(c.closed()) : "-", c.deepseek_p99, c.plan_p99,
                c.half_life < 0 ? "guard" : fmt::format("{:g}", c.half_life));
            std::fflush(stdout);
          }
        }
      }
      if (per_seed) continue;
      for (std::size_t si = 0; si < settings.size(); ++si) {
        const std::vector<cell>& cs = by_setting[si];
        if (cs.empty()) continue;
        cell m;
        int counted = 0, worse = 0;
        double closed = 0;
        for (const cell& c : cs) {
          m.identity += c.identity / cs.size();
          m.deepseek += c.deepseek / cs.size();
          m.in_sample += c.in_sample / cs.size();
          m.plan += c.plan / cs.size();
          m.floor += c.floor / cs.size();
          m.deepseek_p99 += c.deepseek_p99 / cs.size();
          m.plan_p99 += c.plan_p99 / cs.size();
          m.deepseek_ms += c.deepseek_ms / cs.size();
          m.plan_ms += c.plan_ms / cs.size();
          worse += c.worse() ? 1 : 0;
          if (c.counted()) {
            ++counted;
            closed += c.closed();
          }
        }
        fmt::print(
            "| {} | {} | {} | {} | {:.4f} | {:.4f} | {:.4f} | **{:.4f}** | {:.4f} | {} | "
            "{:.4f} | {:.4f} | {}/{} | {:.1f} / {:.0f} |\n",
            f[0], kd.name, settings[si].first, settings[si].second, m.identity, m.deepseek,
            m.in_sample, m.plan, m.floor,
            counted > 0 ? fmt::format("{} ({}/{})", pct(closed / counted), counted, cs.size())
                        : "- (gap < 0.002)",
            m.deepseek_p99, m.plan_p99, worse, cs.size(), m.deepseek_ms, m.plan_ms);
        ++rows;
        std::fflush(stdout);
      }
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("\n");
  for (const auto& [is_stress, tl] : totals) {
    fmt::print(
        "{}: {} cells (model x trace x topology x seed); default worse than deepseek by more "
        "than 0.0005 in {}; largest default - deepseek {:+.4f}; share of the hindsight gap "
        "closed, mean over the {} cells where deepseek is at least 0.002 above the floor: {}\n",
        is_stress ? "stress traces (fast drift, heavy bursts)"
                  : "main traces (stationary, slow drift, regimes, bursts)",
        tl.cells, tl.worse, tl.worst_excess, tl.counted,
        tl.counted > 0 ? pct(tl.closed / tl.counted) : "-");
  }
  fmt::print(
      "plan time (in-process, {} layers, both cores): deepseek {:.0f} ms, default {:.0f} ms "
      "in all\n{} rows in {:.0f} s\n",
      layers, ds_ms, def_ms, rows, secs);
  return totals.empty() ? 1 : 0;
}
