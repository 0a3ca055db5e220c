// The stats half of the plan pipeline: vLLM JSONL streams through the aggregator; the other
// engines' formats go through the importers and several files of one format are summed.
#include <algorithm>
#include <string>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/files.hpp"
#include "eplb/import.hpp"
#include "eplb/plan.hpp"

namespace eplb {

namespace {

// "matrix" covers both matrix formats: import_matrix tells JSON from CSV by content.
result<stats_format> requested_format(const std::string& name) {
  if (name == "matrix") return stats_format::matrix_json;
  auto f = parse_stats_format(name);
  if (!f.ok()) {
    return make_error(
        errc::invalid_argument, position{}, "--stats-format",
        "unknown format \"" + name + "\"; expected auto, vllm, sglang, trtllm or matrix");
  }
  return f;
}

bool same_family(stats_format a, stats_format b) {
  auto is_matrix = [](stats_format f) {
    return f == stats_format::matrix_json || f == stats_format::matrix_csv;
  };
  return a == b || (is_matrix(a) && is_matrix(b));
}

status read_vllm(const plan_request& req, const std::vector<std::string>& files,
                 plan_outcome* out, step_sampler* sampler) {
  if (req.skip_layers != 0) {
    return make_error(errc::invalid_argument, position{}, "--skip-layers",
                      "applies to SGLang and matrix stats; vLLM stats hold MoE layers only");
  }
  auto agg = make_aggregator(req.device);
  if (!agg) return agg.err();
  stats_read_options ropt;
  ropt.steps = req.steps;
  ropt.threads = req.policy.threads;
  ropt.progress = req.progress;
  ropt.batch_bytes = req.max_line_bytes;
  // The per-step objective samples steps on their way to the aggregator.
  stats_sink* sink = agg->get();
  if (sampler) {
    sampler->set_next(sink);
    sink = sampler;
  }
  if (status s = read_vllm_stats(files, ropt, *sink, &out->read); !s.ok()) return s;
  auto loads = (*agg)->finish();
  if (!loads) return loads.err();
  out->aggregator = (*agg)->name();
  out->aggregator_info = (*agg)->info();
  out->loads = std::move(*loads);
  return status::success();
}

// Imports every file and sums them; shapes and layer ids must agree.
status read_imported(const plan_request& req, const std::vector<std::string>& files,
                     stats_format format, plan_outcome* out) {
  import_options opt;
  opt.steps = req.steps;
  opt.skip_layers = req.skip_layers;
  load_matrix sum;
  import_info info;
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto one = import_stats_as(files[i], format, opt);
    if (!one.ok()) return one.err();
    if (i == 0) {
      sum = std::move(one->load);
      info = std::move(one->info);
      continue;
    }
    if (one->load.rows() != sum.rows() || one->load.cols() != sum.cols() ||
        one->info.layer_ids != info.layer_ids) {
      return make_error(errc::shape_mismatch, position{files[i], 0, 0}, "",
                        "has " + std::to_string(one->load.rows()) + " layers x " +
                            std::to_string(one->load.cols()) + " experts, but " + files[0] +
                            " has " + std::to_string(sum.rows()) + " x " +
                            std::to_string(sum.cols()) +
                            (one->load.rows() == sum.rows() ? " (or other layer ids)" : "") +
                            "; files summed together must have the same shape");
    }
    for (Eigen::Index k = 0; k < sum.size(); ++k) {
      if (__builtin_add_overflow(sum.data()[k], one->load.data()[k], &sum.data()[k])) {
        return make_error(errc::overflow, position{files[i], 0, 0}, "",
                          "sum of counts over the files exceeds 2^63-1");
      }
    }
    info.files.insert(info.files.end(), one->info.files.begin(), one->info.files.end());
    info.first_step = std::min(info.first_step, one->info.first_step);
    info.last_step = std::max(info.last_step, one->info.last_step);
    info.steps_total += one->info.steps_total;
    info.steps_used += one->info.steps_used;
    info.num_ranks = std::max(info.num_ranks, one->info.num_ranks);
  }
  out->loads = std::move(sum);
  out->aggregator = "import";
  out->read.files = info.files;
  out->read.num_layers = info.num_layers;
  out->read.num_experts = info.num_experts;
  out->read.records_seen = static_cast<std::uint64_t>(info.steps_total);
  out->read.records_selected = static_cast<std::uint64_t>(info.steps_used);
  out->read.first_step = info.first_step;
  out->read.last_step = info.last_step;
  out->imported = std::move(info);
  return status::success();
}

}  // namespace

status read_stats(const plan_request& req, plan_outcome* out, step_sampler* sampler) {
  auto files = expand_stats_paths(req.stats);
  if (!files) return files.err();
  if (files->empty()) {
    return make_error(errc::invalid_argument, position{}, "--stats", "no stats files given");
  }
  // One file under two spellings (t.jsonl, ./t.jsonl, a link) would be counted twice.
  if (status s = check_distinct_inputs(*files, ""); !s.ok()) return s;
  std::optional<stats_format> format;
  if (req.stats_format != "auto") {
    auto f = requested_format(req.stats_format);
    if (!f.ok()) return f.err();
    format = *f;
  } else {
    // Every file by content; they must all be of one format.
    for (const std::string& file : *files) {
      auto f = detect_stats_format(file);
      if (!f.ok()) return f.err();
      if (format && !same_family(*format, *f)) {
        return make_error(errc::invalid_argument, position{file, 0, 0}, "",
                          std::string("is ") + stats_format_name(*f) + " but " + files->front() +
                              " is " + stats_format_name(*format) +
                              "; give stats of one format per run");
      }
      if (!format) format = *f;
    }
  }
  if (*format == stats_format::vllm_jsonl) return read_vllm(req, *files, out, sampler);
  if (sampler) {
    return make_error(errc::invalid_argument, position{}, "--objective",
                      "per-step needs per-step records (vLLM stats); this input holds sums only");
  }
  return read_imported(req, *files, *format, out);
}

}  // namespace eplb
