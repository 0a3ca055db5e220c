// The redundant-slot sweep (sweep.hpp): one read, then a plan per (EP, R) pair and its held-out
// figures.
//
// How one read knows the train / held-out boundary. The boundary is a fraction of the records,
// and how many records there are is known only at the end. Three ways were weighed: counting the
// records first (a second pass over the input: for compressed files a second decompression, and
// --steps needs the step numbers, so a second parse); keeping every record's loads (hundreds of
// MB for a long trace); and cumulative sums at evenly spaced checkpoints, thinned like the step
// sampler as the stream grows. The sweep takes the third: at most 256 prefix sums are kept (the
// shape's int64 matrix each, bounded to 64 MB in all), the split is placed at the checkpoint
// nearest to the requested fraction, and the train sums are that checkpoint's prefix sum, exact.
// The split is exact for up to 256 records and within half a checkpoint gap beyond: under 0.4% of
// the records for models of up to 32,768 layer x expert cells (DeepSeek-V3 has 14,848; larger
// ones keep fewer checkpoints, at least 4); the sweep reports the split it used. One evenly spaced
// sample of records (at most 1024) serves both parts: the plans use the train records a default
// plan's sampler (512) would keep over the whole input, the judging every sampled held-out record.

#include "eplb/sweep.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <limits>
#include <mutex>

#include "core/thinning.hpp"
#include "eplb/aggregate.hpp"
#include "eplb/eval.hpp"
#include "eplb/flags.hpp"
#include "eplb/import.hpp"
#include "eplb/metrics.hpp"
#include "eplb/policy.hpp"
#include "policy/parallel.hpp"

namespace eplb {

namespace {

// One default plan keeps at most this many sampled steps (step_sampler's default in plan()).
constexpr int kPlanSamples = 512;
// The sweep samples twice as densely, so the held-out part gets twice the default density.
constexpr int kSweepSamples = 2 * kPlanSamples;
constexpr std::size_t kMaxCheckpoints = 256;
constexpr std::size_t kCheckpointBytes = std::size_t{64} << 20;

// A prefix sum of the records before `index`, and the step range of the records from it to the
// next checkpoint.
struct checkpoint {
  std::uint64_t index = 0;
  load_matrix sum;
  std::int64_t first_step = std::numeric_limits<std::int64_t>::max();
  std::int64_t last_step = std::numeric_limits<std::int64_t>::min();
};

// The sink of the one read: running sums with checkpoints, and the step sample.
class split_collector final : public stats_sink {
 public:
  split_collector() : sampler_(nullptr, kSweepSamples) {}

  status on_record(const stats_record& r) override {
    const std::uint64_t i = records_++;
    if (i == 0) {
      running_ = load_matrix::Zero(r.num_layers, r.num_experts);
      const std::size_t bytes = static_cast<std::size_t>(running_.size()) * sizeof(std::int64_t);
      thin_.emplace(std::clamp<std::size_t>(kCheckpointBytes / std::max<std::size_t>(bytes, 1), 4,
                                            kMaxCheckpoints));
    }
    if (thin_->wants(i)) {
      checkpoints_.push_back(checkpoint{i, running_, r.step, r.step});
      if (thin_->overflows(checkpoints_.size())) merge_pairs();
    }
    checkpoint& c = checkpoints_.back();
    c.first_step = std::min(c.first_step, r.step);
    c.last_step = std::max(c.last_step, r.step);
    if (status s = fold_record(r, running_); !s.ok()) return s;
    return sampler_.on_record(r);
  }

  std::uint64_t records() const noexcept { return records_; }
  const std::vector<checkpoint>& checkpoints() const noexcept { return checkpoints_; }
  const step_samples& sample() const noexcept { return sampler_.sample(); }

 private:
  // Keeps every other checkpoint; each absorbs the step range of the one after it.
  void merge_pairs() {
    std::size_t out = 0;
    for (std::size_t i = 0; i < checkpoints_.size(); i += 2, ++out) {
      checkpoint merged = std::move(checkpoints_[i]);
      if (i + 1 < checkpoints_.size()) {
        merged.first_step = std::min(merged.first_step, checkpoints_[i + 1].first_step);
        merged.last_step = std::max(merged.last_step, checkpoints_[i + 1].last_step);
      }
      checkpoints_[out] = std::move(merged);
    }
    checkpoints_.resize(out);
  }

  std::uint64_t records_ = 0;
  load_matrix running_;
  std::optional<detail::thinning> thin_;
  std::vector<checkpoint> checkpoints_;
  step_sampler sampler_;
};

// The two parts of the read.
struct split_parts {
  weight_matrix train_sums;
  step_samples train;                  // what the plans see
  std::vector<sample_matrix> heldout;  // what judges them
  std::vector<std::int64_t> heldout_index;
};

status split_read(const split_collector& c, double fraction, sweep_result& out, split_parts& p) {
  const std::vector<checkpoint>& cps = c.checkpoints();
  const std::uint64_t n = c.records();
  const double target = fraction * static_cast<double>(n);
  std::size_t cut = 0;
  for (std::size_t k = 1; k < cps.size(); ++k) {
    const double d = std::abs(static_cast<double>(cps[k].index) - target);
    if (cut == 0 || d < std::abs(static_cast<double>(cps[cut].index) - target)) cut = k;
  }
  if (cut == 0) {
    return make_error(
        errc::invalid_argument, position{}, "--split",
        fmt::format("{} record(s) selected: at least 2 are needed to hold some out", n));
  }
  const std::uint64_t boundary = cps[cut].index;
  out.train_records = boundary;
  out.heldout_records = n - boundary;
  auto range = [&](std::size_t from, std::size_t to, std::int64_t& first, std::int64_t& last) {
    first = std::numeric_limits<std::int64_t>::max();
    last = std::numeric_limits<std::int64_t>::min();
    for (std::size_t k = from; k < to; ++k) {
      first = std::min(first, cps[k].first_step);
      last = std::max(last, cps[k].last_step);
    }
  };
  range(0, cut, out.train_first, out.train_last);
  range(cut, cps.size(), out.heldout_first, out.heldout_last);
  p.train_sums = to_weights(cps[cut].sum);
  // The plans see the train records a default plan's sampler would keep over the whole input.
  const step_samples& s = c.sample();
  std::uint64_t stride = s.index.size() >= 2 ? s.index[1] - s.index[0] : 1;
  while ((n + stride - 1) / stride > static_cast<std::uint64_t>(kPlanSamples)) stride *= 2;
  p.train.records = boundary;
  for (std::size_t i = 0; i < s.loads.size(); ++i) {
    if (s.index[i] < boundary) {
      if (s.index[i] % stride != 0) continue;
      p.train.loads.push_back(s.loads[i]);
      p.train.index.push_back(s.index[i]);
    } else {
      p.heldout.push_back(s.loads[i]);
      p.heldout_index.push_back(static_cast<std::int64_t>(s.index[i]));
    }
  }
  out.plan_samples = p.train.loads.size();
  out.heldout_samples = p.heldout.size();
  if (p.heldout.empty()) {
    return make_error(errc::invalid_argument, position{}, "--split",
                      fmt::format("no sampled record lies in the held-out part ({} of {} "
                                  "records); use a smaller --split or more records",
                                  out.heldout_records, n));
  }
  if (p.heldout.size() < 16) {
    out.warnings.push_back(fmt::format(
        "only {} held-out step(s) sampled: the held-out figures are noisy", p.heldout.size()));
  }
  return status::success();
}

// The nearest R below and above `r` with (E + R) % EP == 0.
std::vector<int> nearest_valid(int experts, int r, int ep) {
  const int rest = (experts + r) % ep;
  std::vector<int> v;
  if (r - rest >= 0) v.push_back(r - rest);
  v.push_back(r + (ep - rest));
  return v;
}

// The points of the request, in order; invalid_argument for an EP that cannot be planned.
result<std::vector<sweep_point>> make_points(const sweep_request& req, const std::vector<int>& eps,
                                             const topology& shape) {
  std::vector<sweep_point> points;
  for (int ep : eps) {
    if (ep <= 0) {
      return make_error(errc::invalid_argument, position{}, "--ep",
                        fmt::format("EP sizes must be positive, got {}", ep));
    }
    std::vector<int> near;
    bool any = false;
    for (int r : req.redundant) {
      sweep_point p;
      p.ep = ep;
      p.redundant = r;
      if ((std::int64_t{shape.num_experts} + r) % ep != 0) {
        p.nearest = nearest_valid(shape.num_experts, r, ep);
        p.skipped = fmt::format("{} experts + {} redundant = {} slots is not divisible by EP {}",
                                shape.num_experts, r, shape.num_experts + r, ep);
        near.insert(near.end(), p.nearest.begin(), p.nearest.end());
      } else {
        topology t = shape;
        t.num_ranks = ep;
        t.num_slots = shape.num_experts + r;
        if (status s = validate_topology(t); !s.ok()) {
          return make_error(errc::invalid_argument, position{}, "",
                            fmt::format("EP {}, R {}: {}", ep, r, s.message()));
        }
        p.planned = true;
        p.slots_per_rank = t.slots_per_rank();
        any = true;
      }
      points.push_back(std::move(p));
    }
    if (!any) {
      std::sort(near.begin(), near.end());
      near.erase(std::unique(near.begin(), near.end()), near.end());
      return make_error(errc::invalid_argument, position{}, "--ep",
                        fmt::format("EP {}: no --redundant value makes {} experts + R divisible "
                                    "by {}; valid values near them: {}",
                                    ep, shape.num_experts, ep, fmt::join(near, ", ")));
    }
  }
  return points;
}

// What one plan produced.
struct plan_task {
  std::size_t point = 0;
  bool reference = false;
};

struct sweep_context {
  const sweep_request& req;
  const split_parts& parts;
  topology shape;  // layers, experts, groups, nodes
  std::vector<sweep_point>& points;
  std::vector<double> half_life;  // per point: the weighting of its EP's reference plan
  std::mutex progress_mutex;
  int done = 0, total = 0;
};

// Plans one pair on the train part and judges it on the held-out sample.
status run_task(sweep_context& c, const plan_task& task, int threads) {
  sweep_point& p = c.points[task.point];
  topology t = c.shape;
  t.num_ranks = p.ep;
  t.num_slots = t.num_experts + p.redundant;
  policy_options opt;
  opt.threads = threads;
  plan_info info;
  result<placement> plan = make_error(errc::internal, position{}, "sweep", "not planned");
  if (task.reference) {
    // The default plan exactly (what `eplb-gen --stats` runs), recency weighting chosen inside.
    plan = plan_placement(c.parts.train_sums, &c.parts.train, t, opt, &info);
  } else {
    step_plan_options step;
    step.half_lives = {c.half_life[task.point]};
    plan = plan_for_steps(c.parts.train_sums, c.parts.train, t, opt, step, &info);
  }
  if (!plan) {
    return make_error(plan.code(), position{}, "",
                      fmt::format("EP {}, R {}: {}", p.ep, p.redundant, plan.message()));
  }
  const std::vector<double> mine = step_imbalances(c.parts.heldout, *plan, t);
  const step_distribution d = summarize_steps(mine, c.parts.heldout_index);
  p.mean = d.mean;
  p.p99 = d.p99;
  p.worst = d.worst;
  // One baseline per EP, so the time saved compares across R: vLLM's startup layout with the
  // fewest redundant slots the EP size allows (0 when it divides the experts), as `eval
  // --redundant <that R>` judges it.
  topology start = t;
  start.num_slots = t.num_experts + smallest_valid_redundant(t.num_experts, t.num_ranks);
  p.identity_mean = mean_step_imbalance(c.parts.heldout, identity_placement(start), start);
  p.reference = task.reference;
  p.half_life = info.step_half_life;
  if (c.req.expert_fraction) {
    p.time_saved = predicted_time_saved(*c.req.expert_fraction, p.mean, p.identity_mean);
  }
  if (c.req.memory) p.extra_bytes_per_gpu = extra_bytes_per_gpu(*c.req.memory, p.redundant, p.ep);
  if (c.req.plan_progress) {
    std::lock_guard<std::mutex> lock(c.progress_mutex);
    c.req.plan_progress(++c.done, c.total);
  }
  return status::success();
}

// Runs the tasks, `workers` at a time (each plan on its share of the threads); the first error in
// task order. The last tasks to start get every thread: when they start nothing is queued, so the
// cores of the workers that finish would otherwise idle while they run.
status run_tasks(sweep_context& c, const std::vector<plan_task>& tasks, int threads) {
  if (tasks.empty()) return status::success();
  const int n = static_cast<int>(tasks.size());
  const int workers = detail::worker_count(threads, n);
  const int per_plan = std::max(1, threads / workers);
  std::vector<status> results(tasks.size());
  const bool ok = detail::for_each_layer(n, workers, [&](int i, int) {
    results[static_cast<std::size_t>(i)] =
        run_task(c, tasks[static_cast<std::size_t>(i)], n - i < workers ? threads : per_plan);
  });
  for (const status& s : results) {
    if (!s.ok()) return s;
  }
  if (!ok) return make_error(errc::internal, position{}, "sweep", "out of memory while planning");
  return status::success();
}

std::string percent(double x) { return fmt::format("{:.2f}%", 100 * x); }

}  // namespace

result<std::vector<int>> parse_int_list(const std::string& text, const std::string& flag) {
  std::vector<int> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    int v = 0;
    const char* end = item.data() + item.size();
    const auto [ptr, ec] = std::from_chars(item.data(), end, v);
    if (item.empty() || ec != std::errc() || ptr != end || v < 0) {
      return make_error(errc::invalid_argument, position{}, flag,
                        fmt::format("expected a comma-separated list of non-negative integers "
                                    "(for example 0,8,16), got '{}'",
                                    text));
    }
    out.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

result<sweep_result> run_sweep(const sweep_request& req) {
  if (!(req.split > 0 && req.split < 1)) {
    return make_error(errc::invalid_argument, position{}, "--split",
                      fmt::format("must lie strictly between 0 and 1, got {}", req.split));
  }
  if (!(req.tolerance >= 0)) {
    return make_error(errc::invalid_argument, position{}, "--tolerance",
                      fmt::format("must be non-negative, got {}", req.tolerance));
  }
  if (req.redundant.empty()) {
    return make_error(errc::invalid_argument, position{}, "--redundant", "no value given");
  }
  // Within the slot limit, the arithmetic on E + R and the EP sizes cannot overflow.
  for (const auto& [flag, values] :
       {std::pair{"--redundant", &req.redundant}, std::pair{"--ep", &req.eps}}) {
    for (int v : *values) {
      if (v < 0 || v > limits::max_slots) {
        return make_error(
            errc::invalid_argument, position{}, flag,
            fmt::format("{} is outside [0, {}] (docs/limits.md)", v, limits::max_slots));
      }
    }
  }
  auto files = expand_stats_paths(req.stats);
  if (!files) return files.err();
  if (files->empty()) {
    return make_error(errc::invalid_argument, position{}, "--stats", "no stats files given");
  }
  for (const std::string& f : *files) {
    auto format = detect_stats_format(f);
    if (!format) return format.err();
    if (*format != stats_format::vllm_jsonl) {
      return make_error(errc::invalid_value, position{f, 0, 0}, "",
                        std::string("is ") + stats_format_name(*format) +
                            "; a sweep judges plans step by step and needs per-step records "
                            "(vLLM stats JSONL)");
    }
  }
  // The one read.
  split_collector collector;
  stats_read_options ropt;
  ropt.steps = req.steps;
  ropt.threads = req.threads;
  ropt.progress = req.read_progress;
  ropt.batch_bytes = req.max_line_bytes;
  ropt.allow_partial_tail = req.allow_partial_tail;
  stats_read_summary read;
  if (status s = read_vllm_stats(*files, ropt, collector, &read); !s.ok()) return s.err();
  if (collector.records() == 0) {
    return make_error(errc::no_records, position{}, "--steps",
                      "no eplb_load_stats record lies in the selected steps");
  }
  sweep_result out;
  out.files = read.files;
  out.model = read.meta ? read.meta->model : "";
  out.num_layers = read.num_layers;
  out.num_experts = read.num_experts;
  out.records = collector.records();
  out.split_asked = req.split;
  out.tolerance = req.tolerance;
  out.expert_fraction = req.expert_fraction;
  out.warnings = read.warnings;
  sweep_request checked = req;
  std::sort(checked.redundant.begin(), checked.redundant.end());
  checked.redundant.erase(std::unique(checked.redundant.begin(), checked.redundant.end()),
                          checked.redundant.end());
  if (checked.memory) {
    expert_memory& m = *checked.memory;
    if (m.moe_layers == 0) m.moe_layers = out.num_layers;
    if (m.moe_layers != out.num_layers || (m.num_experts > 0 && m.num_experts != out.num_experts)) {
      return make_error(
          errc::shape_mismatch, position{m.source, 0, 0}, "",
          fmt::format("the config gives {} MoE layers x {} routed experts, but the stats have {} "
                      "layers x {} experts: is it the config of the model that was recorded?",
                      m.moe_layers, m.num_experts, out.num_layers, out.num_experts));
    }
    out.memory = m;
  }
  topology shape;
  shape.num_layers = out.num_layers;
  shape.num_experts = out.num_experts;
  shape.num_groups = req.groups.value_or(read.meta ? read.meta->num_groups : 1);
  shape.num_nodes = req.nodes.value_or(read.meta ? read.meta->num_nodes : 1);
  std::vector<int> eps = req.eps;
  if (eps.empty()) {
    if (!read.meta || read.meta->num_ranks <= 0) {
      return make_error(errc::invalid_argument, position{}, "--ep",
                        "the EP size is required: the stats have no eplb_load_meta record");
    }
    eps.push_back(read.meta->num_ranks);
  }
  auto points = make_points(checked, eps, shape);
  if (!points) return points.err();
  out.points = std::move(*points);
  split_parts parts;
  if (status s = split_read(collector, req.split, out, parts); !s.ok()) return s.err();

  // Per EP the median planned R chooses the recency weighting; the other R values reuse it.
  sweep_context c{checked, parts, shape, out.points, {}, {}, 0, 0};
  c.half_life.assign(out.points.size(), 0.0);
  std::vector<plan_task> refs, rest;
  for (std::size_t i = 0; i < out.points.size();) {
    std::size_t j = i;
    std::vector<std::size_t> planned;
    for (; j < out.points.size() && out.points[j].ep == out.points[i].ep; ++j) {
      if (out.points[j].planned) planned.push_back(j);
    }
    const std::size_t ref = planned[planned.size() / 2];
    for (std::size_t k : planned) (k == ref ? refs : rest).push_back(plan_task{k, k == ref});
    i = j;
  }
  c.total = static_cast<int>(refs.size() + rest.size());
  if (req.plan_progress) req.plan_progress(0, c.total);
  const int threads = effective_threads(req.threads);
  if (status s = run_tasks(c, refs, threads); !s.ok()) return s.err();
  for (const plan_task& r : refs) {
    for (const plan_task& t : rest) {
      if (out.points[t.point].ep == out.points[r.point].ep) {
        c.half_life[t.point] = std::max(0.0, out.points[r.point].half_life);
      }
    }
  }
  // Larger layouts search longer: start them first so the last ones to finish are short.
  std::stable_sort(rest.begin(), rest.end(), [&](const plan_task& a, const plan_task& b) {
    const sweep_point &pa = out.points[a.point], &pb = out.points[b.point];
    return pa.ep + pa.redundant > pb.ep + pb.redundant;
  });
  if (status s = run_tasks(c, rest, threads); !s.ok()) return s.err();
  recommend_redundant(out);
  return out;
}

void recommend_redundant(sweep_result& r) {
  r.choices.clear();
  const double tol = r.tolerance;
  auto memory = [&](const sweep_point& p) {
    return p.extra_bytes_per_gpu ? format_bytes(*p.extra_bytes_per_gpu) : std::string();
  };
  for (std::size_t i = 0; i < r.points.size();) {
    std::vector<const sweep_point*> pts;
    std::size_t j = i;
    for (; j < r.points.size() && r.points[j].ep == r.points[i].ep; ++j) {
      if (r.points[j].planned) pts.push_back(&r.points[j]);
    }
    i = j;
    if (pts.empty()) continue;
    std::stable_sort(pts.begin(), pts.end(), [](const sweep_point* a, const sweep_point* b) {
      return a->redundant < b->redundant;
    });
    sweep_choice ch;
    ch.ep = pts.front()->ep;
    const sweep_point* best = pts.front();
    for (const sweep_point* p : pts) {
      if (p->mean < best->mean) best = p;
    }
    std::size_t rec = 0;
    while (pts[rec]->mean > best->mean * (1 + tol)) ++rec;
    const sweep_point* chosen = pts[rec];
    ch.best = best->redundant;
    ch.recommended = chosen->redundant;
    std::string cost;
    if (chosen->extra_bytes_per_gpu) {
      cost = *chosen->extra_bytes_per_gpu > 0
                 ? fmt::format(" It takes {} of extra memory per GPU", memory(*chosen))
                 : std::string(" It takes no extra memory");
      if (chosen != best) cost += fmt::format(" (R = {}: {})", best->redundant, memory(*best));
      cost += '.';
    }
    const std::string smaller =
        rec > 0
            ? fmt::format(
                  " The next smaller, R = {}, is {} worse than the best, more than the "
                  "{} tolerance.",
                  pts[rec - 1]->redundant, percent(pts[rec - 1]->mean / best->mean - 1),
                  percent(tol))
            : (chosen->redundant > 0 ? std::string(" It is the smallest R tried.") : std::string());
    if (chosen == best) {
      ch.why =
          fmt::format("R = {}: it has the lowest held-out mean per-step imbalance, {:.4f}.{}{}",
                      best->redundant, best->mean, smaller, cost);
    } else {
      ch.why = fmt::format(
          "R = {}: its held-out mean per-step imbalance {:.4f} is within {} of the best, R = {} "
          "at {:.4f} (+{}).{}{}",
          chosen->redundant, chosen->mean, percent(tol), best->redundant, best->mean,
          percent(chosen->mean / best->mean - 1), smaller, cost);
    }
    // The knee: mean and R scaled to [0, 1]; the point furthest above the straight line.
    const sweep_point* first = pts.front();
    const double gain = first->mean - best->mean;
    const double span = static_cast<double>(pts.back()->redundant - first->redundant);
    const sweep_point* knee = first;
    double knee_score = 0;
    if (gain > 0 && span > 0) {
      for (const sweep_point* p : pts) {
        const double score = (first->mean - p->mean) / gain -
                             static_cast<double>(p->redundant - first->redundant) / span;
        if (score > knee_score) {
          knee_score = score;
          knee = p;
        }
      }
    }
    ch.knee = knee->redundant;
    if (pts.size() == 1) {
      ch.knee_why = fmt::format("R = {}: the only R planned", knee->redundant);
    } else if (gain <= 0) {
      ch.knee_why = fmt::format("R = {}: no larger R lowers the held-out mean", knee->redundant);
    } else if (knee == first) {
      ch.knee_why = fmt::format(
          "R = {}: no knee; no R gains more of the drop to the best ({:.4f} at R = {}) than its "
          "share of the range R = {}..{}",
          knee->redundant, best->mean, best->redundant, first->redundant, pts.back()->redundant);
    } else {
      ch.knee_why = fmt::format(
          "R = {}: from R = {} to R = {} the held-out mean drops {:.4f} -> {:.4f}, {:.0f}% of the "
          "drop to the best ({:.4f} at R = {}), at {:.0f}% of the range R = {}..{}",
          knee->redundant, first->redundant, knee->redundant, first->mean, knee->mean,
          100 * (first->mean - knee->mean) / gain, best->mean, best->redundant,
          100 * static_cast<double>(knee->redundant - first->redundant) / span, first->redundant,
          pts.back()->redundant);
    }
    r.choices.push_back(std::move(ch));
  }
}

}  // namespace eplb
