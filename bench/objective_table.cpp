// Objective benchmark: does planning against the per-step load distribution beat planning on the
// summed loads, on steps the plan has not seen? For each Qwen counts file in ../shared/data/qwen,
// synthesizes a trace in-process (10,000 steps, 256-8192 tokens per step, top-8), plans on the
// first 70% of the steps with the sum and the per-step objective (DeepSeek policy) for EP 8 and
// 32 with 32 redundant slots, and replays the last 30%. Prints the mean held-out per-step
// imbalance of the identity layout, the sum and the per-step plans, for a drifting and a
// stationary trace. Deterministic (fixed seeds).
//
// Usage: eplb-bench-objective [--shared DIR] [--steps N] [--quick]

#include <fmt/core.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/eval.hpp"
#include "eplb/metrics.hpp"
#include "eplb/objective.hpp"
#include "eplb/policy.hpp"
#include "eplb/synth.hpp"

using namespace eplb;

namespace {

struct scenario {
  const char* name;
  double drift;
  double burst_prob;
};

struct config_result {
  int ep = 0;
  double identity = 0, sum = 0, per_step = 0;
  objective_info info;
  double plan_ms = 0;
};

// Routes the first `train` records into the moments, then plans every configuration and replays
// the rest of the records through the plans.
class split_sink final : public stats_sink {
 public:
  split_sink(std::uint64_t train, std::vector<int> eps, int redundant)
      : train_(train),
        eps_(std::move(eps)),
        redundant_(redundant),
        agg_(std::move(make_aggregator("cpu").value())),
        sampler_(agg_.get()) {}

  status on_record(const stats_record& r) override {
    if (seen_++ < train_) return sampler_.on_record(r);
    if (replays_.empty()) {
      if (status s = start(r); !s.ok()) return s;
    }
    for (replayer& rp : replays_) {
      if (status s = rp.on_record(r); !s.ok()) return s;
    }
    return status::success();
  }

  result<std::vector<config_result>> finish() {
    std::vector<config_result> out;
    for (std::size_t i = 0; i < replays_.size(); ++i) {
      auto res = replays_[i].finish();
      if (!res) return res.err();
      config_result c;
      c.ep = eps_[i];
      c.identity = res->candidates[0].imbalance.mean;
      c.sum = res->candidates[1].imbalance.mean;
      c.per_step = res->candidates[2].imbalance.mean;
      c.info = infos_[i];
      c.plan_ms = plan_ms_[i];
      out.push_back(c);
    }
    return out;
  }

 private:
  status start(const stats_record& r) {
    auto loads = agg_->finish();
    if (!loads) return loads.err();
    const weight_matrix sums = to_weights(*loads);
    for (int ep : eps_) {
      topology t{r.num_layers, r.num_experts, r.num_experts + redundant_, ep, 1, 1};
      policy_options po;
      auto sum = rebalance(sums, t, po);
      if (!sum) return sum.err();
      objective_info info;
      const auto a = std::chrono::steady_clock::now();
      auto per = plan_per_step(sums, sampler_, t, po, objective_options{}, nullptr, &info);
      if (!per) return per.err();
      plan_ms_.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
      std::vector<eval_candidate> c;
      c.push_back({"identity", identity_placement(t), true});
      c.push_back({"sum", std::move(*sum)});
      c.push_back({"per-step", std::move(*per)});
      replay_options ro;
      ro.bounds = false;
      auto rp = replayer::create(t, std::move(c), ro);
      if (!rp) return rp.err();
      replays_.push_back(std::move(*rp));
      infos_.push_back(info);
    }
    return status::success();
  }

  std::uint64_t train_;
  std::vector<int> eps_;
  int redundant_;
  std::uint64_t seen_ = 0;
  std::unique_ptr<aggregator> agg_;
  step_sampler sampler_;
  std::vector<replayer> replays_;
  std::vector<objective_info> infos_;
  std::vector<double> plan_ms_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string shared = EPLB_SHARED_DIR;
  int steps = 10000;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--shared") && i + 1 < argc) {
      shared = argv[++i];
    } else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) {
      steps = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    }
  }
  if (quick) steps = 2000;
  const char* files[][2] = {{"qwen3-235b", "qwen3_235b_a22b_counts.json"},
                            {"qwen3-30b", "qwen3_30b_a3b_counts.json"},
                            {"qwen2-57b", "qwen2_57b_a14b_counts.json"}};
  const scenario scenarios[] = {{"drift 0.3", 0.3, 0.0}, {"stationary", 0.0, 0.0}};
  const int redundant = 32;
  const auto t0 = std::chrono::steady_clock::now();
  fmt::print(
      "{} steps per trace, 256-8192 tokens per step, top-8, {} redundant slots; plan on "
      "the first 70%, judge the last 30%.\n\n",
      steps, redundant);
  fmt::print(
      "| model | trace | EP | identity | sum | per-step | per-step - sum | search kept | "
      "per-step plan s |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|\n");
  int rows = 0;
  for (auto& f : files) {
    auto dist = read_counts_json(shared + "/data/qwen/" + f[1]);
    if (!dist) {
      fmt::print(stderr, "note: {} (the Qwen counts live in ../shared; skipped)\n", dist.message());
      continue;
    }
    for (const scenario& sc : scenarios) {
      synth_options o;
      o.num_steps = steps;
      o.min_batch_tokens = 256;
      o.max_batch_tokens = 8192;
      o.drift = sc.drift;
      o.burst_prob = sc.burst_prob;
      o.seed = 7;
      const int E = static_cast<int>(dist->cols());
      o.recording = topology{static_cast<int>(dist->rows()), E, E, 8, 1, 1};
      split_sink sink(static_cast<std::uint64_t>(steps) * 7 / 10, {8, 32}, redundant);
      if (status s = synthesize_records(*dist, o, sink); !s.ok()) {
        fmt::print(stderr, "error: {}\n", s.message());
        return 1;
      }
      auto res = sink.finish();
      if (!res) {
        fmt::print(stderr, "error: {}\n", res.message());
        return 1;
      }
      for (const config_result& c : *res) {
        fmt::print("| {} | {} | {} | {:.4f} | {:.4f} | {:.4f} | {:+.4f} | {} | {:.1f} |\n", f[0],
                   sc.name, c.ep, c.identity, c.sum, c.per_step, c.per_step - c.sum,
                   c.info.searched ? "yes" : "no", c.plan_ms / 1000);
        ++rows;
      }
      std::fflush(stdout);
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("\n{} rows in {:.1f} s\n", rows, secs);
  return rows > 0 ? 0 : 1;
}
