// The eval pipeline: mapping files + stats files -> replay -> figures; the held-out split of
// step ranges; the JSON written for CI.

#include <sys/stat.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "eplb/eval.hpp"
#include "eplb/flags.hpp"
#include "eplb/loader.hpp"
#include "mapping/export_common.hpp"
#include "stats/text.hpp"

namespace eplb {

namespace {

using detail::cat;

result<placement> load_placement(const std::string& path) {
  // The one parser of mapping files; the topology is checked against the stats later.
  const loader::load_result loaded = loader::load_mapping_file(path, loader::expected_topology{});
  if (!loaded.ok()) {
    return make_error(errc::invalid_value, position{}, "", loaded.error.message);
  }
  placement p;
  p.num_layers = loaded.value.num_layers();
  p.num_slots = loaded.value.num_slots();
  p.num_experts = loaded.value.num_experts();
  const std::vector<int> flat = loaded.value.flat_physical_to_logical();
  p.physical_to_logical.assign(flat.begin(), flat.end());
  return p;
}

// Builds the replayer from the first judged record, which tells the layers, experts and (with
// its meta) the EP size, then forwards every record to it.
class lazy_replay final : public stats_sink {
 public:
  lazy_replay(const eval_request& req, std::vector<std::pair<std::string, placement>> maps,
              std::optional<placement> baseline)
      : req_(req), maps_(std::move(maps)), baseline_(std::move(baseline)) {}

  status on_record(const stats_record& r) override {
    if (!replay_) {
      if (status s = start(r); !s.ok()) return s;
    }
    return replay_->on_record(r);
  }

  result<eval_result> finish() {
    if (!replay_) {
      return make_error(errc::no_records, position{}, "", "no eplb_load_stats record was judged");
    }
    return replay_->finish();
  }

 private:
  status start(const stats_record& r) {
    topology t;
    t.num_layers = r.num_layers;
    t.num_experts = r.num_experts;
    if (req_.ep) {
      t.num_ranks = *req_.ep;
    } else if (r.meta && r.meta->num_ranks > 0) {
      t.num_ranks = r.meta->num_ranks;
    } else {
      t.num_ranks = r.num_ranks;
    }
    if (t.num_ranks <= 0) {
      return make_error(errc::invalid_topology, position{}, "--ep",
                        "the EP size is required: the stats do not record one");
    }
    // A mapping of another model would otherwise surface as a nonsense slot count.
    for (const auto& [name, p] : maps_) {
      if (p.num_layers != r.num_layers || p.num_experts != r.num_experts) {
        return make_error(errc::shape_mismatch, position{name, 0, 0}, "",
                          cat("the mapping has ", p.num_layers, " layers x ", p.num_experts,
                              " experts but the stats (", r.where.file, ") have ", r.num_layers,
                              " x ", r.num_experts));
      }
    }
    if (req_.redundant) {
      t.num_slots = t.num_experts + *req_.redundant;
    } else if (!maps_.empty()) {
      t.num_slots = maps_.front().second.num_slots;
    } else if (baseline_) {
      t.num_slots = baseline_->num_slots;
    } else if (r.meta) {
      t.num_slots = t.num_experts + r.meta->num_redundant_experts;
    } else {
      t.num_slots = t.num_experts;
    }
    if (status s = validate_topology(t); !s.ok()) return s;
    std::vector<eval_candidate> cands;
    if (req_.identity) cands.push_back({"identity", identity_placement(t), true});
    if (req_.recorded) cands.push_back({"recorded", std::nullopt, false});
    for (auto& [name, p] : maps_) cands.push_back({name, std::move(p), false});
    if (baseline_) cands.push_back({req_.baseline, std::move(baseline_), false, true});
    auto rp = replayer::create(t, std::move(cands), req_.replay);
    if (!rp) return rp.err();
    replay_.emplace(std::move(*rp));
    return status::success();
  }

  const eval_request& req_;
  std::vector<std::pair<std::string, placement>> maps_;
  std::optional<placement> baseline_;
  std::optional<replayer> replay_;
};

// Collects the step numbers of the selected records.
class step_collector final : public stats_sink {
 public:
  status on_record(const stats_record& r) override {
    steps.push_back(r.step);
    return status::success();
  }
  std::vector<std::int64_t> steps;
};

void append_number(std::string& out, double v) {
  if (!detail::append_double(out, v)) out += "null";
}

void append_array(std::string& out, const std::vector<double>& v) {
  out += '[';
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += ", ";
    append_number(out, v[i]);
  }
  out += ']';
}

void append_distribution(std::string& out, const step_distribution& d) {
  out += "{\"mean\": ";
  append_number(out, d.mean);
  out += ", \"p50\": ";
  append_number(out, d.p50);
  out += ", \"p90\": ";
  append_number(out, d.p90);
  out += ", \"p99\": ";
  append_number(out, d.p99);
  out += ", \"worst\": ";
  append_number(out, d.worst);
  out += ", \"worst_step\": ";
  detail::append_int(out, d.worst_step);
  out += '}';
}

void append_range(std::string& out, const step_range& r) {
  out += "{\"first\": ";
  if (r.first) {
    detail::append_int(out, *r.first);
  } else {
    out += "null";
  }
  out += ", \"last\": ";
  if (r.last) {
    detail::append_int(out, *r.last);
  } else {
    out += "null";
  }
  out += '}';
}

}  // namespace

result<step_split> split_step_list(std::vector<std::int64_t> steps, double fraction) {
  if (!(fraction > 0 && fraction < 1)) {
    return make_error(errc::invalid_argument, position{}, "--split",
                      "the train fraction must lie strictly between 0 and 1");
  }
  std::sort(steps.begin(), steps.end());
  if (steps.empty() || steps.front() == steps.back()) {
    return make_error(errc::no_records, position{}, "--split",
                      cat("needs records of at least two different steps, found ", steps.size(),
                          " record(s)", steps.empty() ? "" : " of one step"));
  }
  const std::size_t n = steps.size();
  auto k = static_cast<std::size_t>(fraction * static_cast<double>(n));
  k = std::clamp<std::size_t>(k, 1, n - 1);
  // Records of the boundary step all go to held_out, so no step is on both sides.
  while (k > 0 && steps[k - 1] == steps[k]) --k;
  if (k == 0) {  // the first step fills the train share: move the boundary to the next step
    k = static_cast<std::size_t>(std::upper_bound(steps.begin(), steps.end(), steps[0]) -
                                 steps.begin());
  }
  step_split out;
  out.train.first = steps.front();
  out.train.last = steps[k - 1];
  out.held_out.first = steps[k];
  out.held_out.last = steps.back();
  out.train_records = k;
  out.held_out_records = n - k;
  return out;
}

result<step_split> split_steps(const std::vector<std::string>& files, const step_range& steps,
                               double fraction, bool allow_partial_tail) {
  if (!(fraction > 0 && fraction < 1)) return split_step_list({}, fraction).err();
  auto paths = expand_stats_paths(files);
  if (!paths) return paths.err();
  for (const std::string& path : *paths) {
    // The split counts the records first, then the run reads them again.
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
      return make_error(errc::invalid_argument, position{}, "--split",
                        cat("reads the stats twice, but ", path,
                            " is a pipe or a device that can be read once; save it to a file"));
    }
  }
  stats_read_options ropt;
  ropt.steps = steps;
  ropt.allow_partial_tail = allow_partial_tail;
  step_collector c;
  if (status s = read_vllm_stats(*paths, ropt, c, nullptr); !s.ok()) return s.err();
  return split_step_list(std::move(c.steps), fraction);
}

result<eval_result> evaluate(const eval_request& req, stats_read_summary* read) {
  if (status s = check_flag(flags::ep, req.ep); !s.ok()) return s.err();
  if (status s = check_flag(flags::redundant, req.redundant); !s.ok()) return s.err();
  auto files = expand_stats_paths(req.stats);
  if (!files) return files.err();
  std::vector<std::pair<std::string, placement>> maps;
  for (const std::string& path : req.mappings) {
    auto p = load_placement(path);
    if (!p) return p.err();
    maps.emplace_back(path, std::move(*p));
  }
  std::optional<placement> baseline;
  if (!req.baseline.empty()) {
    auto p = load_placement(req.baseline);
    if (!p) return p.err();
    baseline = std::move(*p);
  }
  if (!req.identity && !req.recorded && maps.empty() && !baseline) {
    return make_error(errc::invalid_argument, position{}, "--mapping",
                      "nothing to judge: give a mapping, the identity layout or --recorded");
  }
  lazy_replay sink(req, std::move(maps), std::move(baseline));
  stats_read_options ropt;
  ropt.steps = req.steps;
  ropt.allow_partial_tail = req.allow_partial_tail;
  stats_read_summary summary;
  const status st = read_vllm_stats(*files, ropt, sink, &summary);
  if (read) *read = summary;
  if (!st.ok()) return st.err();
  return sink.finish();
}

const candidate_report* find_identity(const eval_result& result) {
  for (const candidate_report& c : result.candidates) {
    if (c.identity) return &c;
  }
  return nullptr;
}

std::optional<regression_gate> judge_regression(const eval_result& result, double max_regression) {
  const auto base = std::find_if(result.candidates.begin(), result.candidates.end(),
                                 [](const candidate_report& c) { return c.baseline; });
  if (base == result.candidates.end()) return std::nullopt;
  regression_gate gate;
  gate.baseline = base->name;
  gate.baseline_mean = base->imbalance.mean;
  gate.max_regression = max_regression;
  for (const candidate_report& c : result.candidates) {
    if (c.baseline || c.identity || c.recorded) continue;
    regression_check check;
    check.name = c.name;
    check.mean = c.imbalance.mean;
    check.regression = gate.baseline_mean > 0 ? check.mean / gate.baseline_mean - 1 : 0;
    check.pass = check.regression <= max_regression;
    gate.pass = gate.pass && check.pass;
    gate.checks.push_back(std::move(check));
  }
  return gate;
}

std::uint64_t count_overlap(const eval_result& result, const step_range& train) {
  return static_cast<std::uint64_t>(std::count_if(
      result.steps.begin(), result.steps.end(), [&](std::int64_t s) { return train.contains(s); }));
}

std::string eval_json(const eval_result& r, const eval_context& ctx) {
  std::string s = "{\n  \"tool\": \"eplb-gen eval\",\n  \"version\": ";
  detail::append_json_string(s, EPLB_VERSION);
  s += ",\n  \"stats\": {\"files\": [";
  for (std::size_t i = 0; i < ctx.files.size(); ++i) {
    if (i) s += ", ";
    detail::append_json_string(s, ctx.files[i]);
  }
  s += "], \"judged_records\": ";
  detail::append_int(s, static_cast<std::int64_t>(r.steps.size()));
  s += ", \"first_step\": ";
  detail::append_int(s, r.steps.empty() ? 0 : *std::min_element(r.steps.begin(), r.steps.end()));
  s += ", \"last_step\": ";
  detail::append_int(s, r.steps.empty() ? 0 : *std::max_element(r.steps.begin(), r.steps.end()));
  s += "},\n  \"train_steps\": ";
  if (ctx.train_steps) {
    append_range(s, *ctx.train_steps);
  } else {
    s += "null";
  }
  s += ",\n  \"train_overlap_records\": ";
  detail::append_int(s, static_cast<std::int64_t>(ctx.train_overlap));
  s += ",\n  \"topology\": {\"num_layers\": ";
  detail::append_int(s, r.topo.num_layers);
  s += ", \"num_experts\": ";
  detail::append_int(s, r.topo.num_experts);
  s += ", \"num_slots\": ";
  detail::append_int(s, r.topo.num_slots);
  s += ", \"num_ranks\": ";
  detail::append_int(s, r.topo.num_ranks);
  s += "},\n  \"expert_fraction\": ";
  if (ctx.expert_fraction) {
    append_number(s, *ctx.expert_fraction);
  } else {
    s += "null";
  }
  s += ",\n  \"bound\": ";
  if (r.bound) {
    append_distribution(s, *r.bound);
  } else {
    s += "null";
  }
  s += ",\n  \"bound_records\": ";
  detail::append_int(s, static_cast<std::int64_t>(r.bound_steps.size()));
  s += ",\n  \"mappings\": [";
  const candidate_report* identity = find_identity(r);
  for (std::size_t i = 0; i < r.candidates.size(); ++i) {
    const candidate_report& c = r.candidates[i];
    s += i ? ",\n    {" : "\n    {";
    s += "\"name\": ";
    detail::append_json_string(s, c.name);
    s += ", \"recorded\": ";
    s += c.recorded ? "true" : "false";
    s += ", \"baseline\": ";
    s += c.baseline ? "true" : "false";
    s += ", \"num_slots\": ";
    detail::append_int(s, c.num_slots);
    s += ", \"num_ranks\": ";
    detail::append_int(s, c.num_ranks);
    s += ",\n     \"imbalance\": ";
    append_distribution(s, c.imbalance);
    s += ",\n     \"gap\": ";
    if (c.gap) {
      append_distribution(s, *c.gap);
    } else {
      s += "null";
    }
    s += ",\n     \"predicted_time_saved\": ";
    if (ctx.expert_fraction && identity) {
      append_number(s, predicted_time_saved(*ctx.expert_fraction, c.imbalance.mean,
                                            identity->imbalance.mean));
    } else {
      s += "null";
    }
    s += ",\n     \"busiest_ranks\": [";
    std::vector<int> order(c.rank_share.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = static_cast<int>(k);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return c.rank_share[static_cast<std::size_t>(a)] > c.rank_share[static_cast<std::size_t>(b)];
    });
    for (std::size_t k = 0; k < std::min<std::size_t>(order.size(), 3); ++k) {
      const auto rk = static_cast<std::size_t>(order[k]);
      s += k ? ", " : "";
      s += "{\"rank\": ";
      detail::append_int(s, order[k]);
      s += ", \"load_vs_mean\": ";
      append_number(s, c.rank_share[rk]);
      s += ", \"busiest_layer_steps\": ";
      detail::append_int(s, c.busiest_count[rk]);
      s += '}';
    }
    s += "],\n     \"layer_mean_imbalance\": ";
    append_array(s, c.layer_mean_imbalance);
    s += '}';
  }
  s += "\n  ],\n  \"gate\": ";
  const std::optional<regression_gate> gate =
      ctx.max_regression ? judge_regression(r, *ctx.max_regression) : std::nullopt;
  if (gate) {
    s += "{\"baseline\": ";
    detail::append_json_string(s, gate->baseline);
    s += ", \"baseline_mean\": ";
    append_number(s, gate->baseline_mean);
    s += ", \"max_regression\": ";
    append_number(s, gate->max_regression);
    s += ", \"pass\": ";
    s += gate->pass ? "true" : "false";
    s += ", \"mappings\": [";
    for (std::size_t i = 0; i < gate->checks.size(); ++i) {
      const regression_check& c = gate->checks[i];
      s += i ? ", {\"name\": " : "{\"name\": ";
      detail::append_json_string(s, c.name);
      s += ", \"mean\": ";
      append_number(s, c.mean);
      s += ", \"regression\": ";
      append_number(s, c.regression);
      s += ", \"pass\": ";
      s += c.pass ? "true" : "false";
      s += '}';
    }
    s += "]}";
  } else {
    s += "null";
  }
  s += "\n}\n";
  return s;
}

}  // namespace eplb
