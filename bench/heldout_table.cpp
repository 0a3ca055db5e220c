// DEV harness (will become eplb-bench-heldout).
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/eval.hpp"
#include "eplb/metrics.hpp"
#include "eplb/policy.hpp"
#include "eplb/synth.hpp"

using namespace eplb;

namespace {

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

struct figures {
  double mean = 0, p99 = 0;
};

figures judge(const std::vector<sample_matrix>& steps, const placement& p, const topology& t) {
  std::vector<double> v;
  v.reserve(steps.size());
  for (const auto& s : steps) v.push_back(mean_step_imbalance({s}, p, t));
  figures f;
  for (double x : v) f.mean += x;
  f.mean /= static_cast<double>(v.size());
  std::sort(v.begin(), v.end());
  f.p99 = v[static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(v.size()))) - 1];
  return f;
}

weight_matrix sum_of(const std::vector<sample_matrix>& s, std::size_t a, std::size_t b) {
  weight_matrix w = weight_matrix::Zero(s[0].rows(), s[0].cols());
  for (std::size_t i = a; i < b; ++i) w += s[i].cast<double>();
  return w;
}

// Evenly spaced, at most `cap` samples of [a, b).
std::vector<sample_matrix> sample_of(const std::vector<sample_matrix>& s, std::size_t a,
                                     std::size_t b, std::size_t cap) {
  std::vector<sample_matrix> out;
  std::size_t stride = 1;
  while ((b - a + stride - 1) / stride > cap) stride *= 2;
  for (std::size_t i = a; i < b; i += stride) out.push_back(s[i]);
  return out;
}

step_samples as_samples(const std::vector<sample_matrix>& v, std::size_t a, std::size_t b) {
  step_samples s;
  std::size_t stride = 1;
  while ((b - a + stride - 1) / stride > 512) stride *= 2;
  for (std::size_t i = a; i < b; i += stride) {
    s.loads.push_back(v[i]);
    s.index.push_back(i - a);
  }
  s.records = b - a;
  return s;
}

struct kind {
  const char* name;
  double drift;
  double drift_speed;
  double burst_prob;
  int burst_steps;
  double burst_factor;
  int regime_steps;
};

}  // namespace

int main(int argc, char** argv) {
  std::string shared = EPLB_SHARED_DIR;
  int steps = 1000;
  int layers = 24;
  std::vector<std::string> models = {"qwen3-30b", "qwen3-235b", "qwen2-57b"};
  std::vector<std::string> kinds_wanted;
  std::vector<int> seeds = {1, 2, 3};
  std::vector<std::pair<int, int>> settings = {{8, 64}, {16, 32}, {32, 32}};
  step_plan_options spo;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--model") && i + 1 < argc) {
      models = {argv[++i]};
    } else if (!std::strcmp(argv[i], "--kind") && i + 1 < argc) {
      kinds_wanted.push_back(argv[++i]);
    } else if (!std::strcmp(argv[i], "--seeds") && i + 1 < argc) {
      seeds.clear();
      for (int s = 1; s <= std::atoi(argv[i + 1]); ++s) seeds.push_back(s);
      ++i;
    } else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--layers") && i + 1 < argc) {
      layers = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--final-samples") && i + 1 < argc) {
      spo.final_samples = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--fit-samples") && i + 1 < argc) {
      spo.fit_samples = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--spike-cap") && i + 1 < argc) {
      spo.spike_cap = std::atof(argv[++i]);
    } else if (!std::strcmp(argv[i], "--half-lives") && i + 1 < argc) {
      spo.half_lives.clear();
      std::string v = argv[++i];
      std::size_t pos = 0;
      while (pos <= v.size()) {
        const std::size_t c = v.find(',', pos);
        spo.half_lives.push_back(std::atof(v.substr(pos, c - pos).c_str()));
        if (c == std::string::npos) break;
        pos = c + 1;
      }
    } else if (!std::strcmp(argv[i], "--ep") && i + 2 < argc) {
      settings = {{std::atoi(argv[i + 1]), std::atoi(argv[i + 2])}};
      i += 2;
    }
  }
  const kind kinds[] = {{"stationary", 0, 0.002, 0, 10, 8, 0},
                        {"drift", 0.3, 0.0005, 0, 10, 8, 0},
                        {"fastdrift", 0.3, 0.002, 0, 10, 8, 0},
                        {"regimes", 0, 0.002, 0, 10, 8, 50},
                        {"bursts", 0, 0.002, 0.01, 10, 8, 0},
                        {"heavybursts", 0, 0.002, 0.05, 10, 10, 0}};
  fmt::print("| model | kind | seed | EP | R | identity | deepseek | balanced-sum | default | floor | "
             "closed | p99 ds/def | ms | note |\n");
  for (const std::string& model : models) {
    const std::string file = model == "qwen3-30b"    ? "qwen3_30b_a3b_counts.json"
                             : model == "qwen3-235b" ? "qwen3_235b_a22b_counts.json"
                                                     : "qwen2_57b_a14b_counts.json";
    result<weight_matrix> full = weight_matrix();
    if (model == "zipf-dsv3") {
      // eplb-gen synth's default distribution at DeepSeek-V3's shape: Zipf(1), ranks rotated.
      weight_matrix z(58, 256);
      for (int l = 0; l < 58; ++l) {
        for (int e = 0; e < 256; ++e) z(l, e) = 1.0 / ((e * 7 + l * 3) % 256 + 1.0);
      }
      full = z;
    } else {
      full = read_counts_json(shared + "/data/qwen/" + file);
    }
    if (!full) {
      fmt::print(stderr, "{}\n", full.message());
      return 1;
    }
    const int L = std::min<int>(layers, static_cast<int>(full->rows()));
    weight_matrix dist(L, full->cols());
    for (int l = 0; l < L; ++l) dist.row(l) = full->row(l * full->rows() / L);
    const int E = static_cast<int>(dist.cols());
    for (const kind& kd : kinds) {
      if (!kinds_wanted.empty() &&
          std::find(kinds_wanted.begin(), kinds_wanted.end(), kd.name) == kinds_wanted.end()) {
        continue;
      }
      for (int seed : seeds) {
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
          fmt::print(stderr, "{}\n", s.message());
          return 1;
        }
        const std::size_t n = tr.steps.size(), cut = n / 2;
        const std::vector<sample_matrix> judged(tr.steps.begin() + static_cast<long>(cut),
                                                tr.steps.end());
        const weight_matrix train_sum = sum_of(tr.steps, 0, cut);
        const weight_matrix judged_sum = sum_of(tr.steps, cut, n);
        const auto train_sample = sample_of(tr.steps, 0, cut, 512);
        const auto judged_sample = sample_of(tr.steps, cut, n, 512);
        for (auto [ep, red] : settings) {
          if ((E + red) % ep != 0) continue;
          const int nodes = std::max(1, ep / 8);
          topology t{L, E, E + red, ep, nodes, 1};
          policy_options ds_opt;
          ds_opt.kind = policy_kind::deepseek;
          policy_options bal_opt;
          bal_opt.objective = objective_kind::sum;
          policy_options def_opt;
          const placement ds = *rebalance(train_sum, t, ds_opt);
          const placement bal = *rebalance(train_sum, t, bal_opt);
          const step_samples ts = as_samples(tr.steps, 0, cut);
          plan_info info;
          const auto a0 = std::chrono::steady_clock::now();
          const placement def = *plan_for_steps(train_sum, ts, t, def_opt, spo, &info);
          const double def_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a0).count();
          const figures fi = judge(judged, identity_placement(t), t);
          const figures fds = judge(judged, ds, t);
          const figures fbal = judge(judged, bal, t);
          const figures fdef = judge(judged, def, t);
          // Hindsight floor: planned on half of the judged steps (even / odd), judged on the other.
          std::vector<sample_matrix> ev, od;
          for (std::size_t i = 0; i < judged.size(); ++i) (i % 2 ? od : ev).push_back(judged[i]);
          auto xfit = [&](auto&& planner) {
            const placement pe = planner(ev), po = planner(od);
            return (judge(od, pe, t).mean * static_cast<double>(od.size()) +
                    judge(ev, po, t).mean * static_cast<double>(ev.size())) /
                   static_cast<double>(judged.size());
          };
          auto sum_all = [](const std::vector<sample_matrix>& v) { return sum_of(v, 0, v.size()); };
          const double x_ds = xfit([&](const std::vector<sample_matrix>& v) {
            return *rebalance(sum_all(v), t, ds_opt);
          });
          const double x_def = xfit([&](const std::vector<sample_matrix>& v) {
            const step_samples ss = as_samples(v, 0, v.size());
            return *plan_for_steps(sum_all(v), ss, t, def_opt, spo, nullptr);
          });
          policy_options dsps_opt = ds_opt;
          dsps_opt.objective = objective_kind::per_step;
          const double x_dsps = xfit([&](const std::vector<sample_matrix>& v) {
            const step_samples ss = as_samples(v, 0, v.size());
            return *plan_placement(sum_all(v), &ss, t, dsps_opt, nullptr);
          });
          const double floor = std::min({x_ds, x_def, x_dsps});
          const double dist = fds.mean - floor;
          fmt::print("| {} | {} | {} | {} | {} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {} | "
                     "{:.4f}/{:.4f} | {:.0f} | {} |\n",
                     model, kd.name, seed, ep, red, fi.mean, fds.mean, fbal.mean, fdef.mean, floor,
                     dist >= 0.002 ? fmt::format("{:.0f}%", 100 * (fds.mean - fdef.mean) / dist) : "-",
                     fds.p99, fdef.p99, def_ms, info.step_half_life);
          std::fflush(stdout);
        }
      }
    }
  }
  return 0;
}
