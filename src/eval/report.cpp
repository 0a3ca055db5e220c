// The HTML report: the page template (report_page.hpp) around the evaluation as JSON. Numbers are
// rounded to what a chart can show, so a 94-layer model stays well under a few MB.

#include "eplb/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>

#include "eval/report_page.hpp"
#include "eval/sweep_page.hpp"
#include "mapping/export_common.hpp"

namespace eplb {

namespace {

// Appends v with at most `digits` decimals, trailing zeros dropped ("1.25", "2", "null").
void append_fixed(std::string& out, double v, int digits) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  const std::size_t start = out.size();
  fmt::format_to(std::back_inserter(out), "{:.{}f}", v, digits);
  if (out.find('.', start) != std::string::npos) {
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
  }
  if (out.compare(start, std::string::npos, "-0") == 0) out.erase(start, 1);
}

template <class Range>
void append_fixed_array(std::string& out, const Range& values, int digits) {
  out += '[';
  bool first = true;
  for (const auto& v : values) {
    if (!first) out += ',';
    first = false;
    append_fixed(out, static_cast<double>(v), digits);
  }
  out += ']';
}

void append_distribution(std::string& out, const step_distribution& d) {
  out += "{\"mean\":";
  append_fixed(out, d.mean, 6);
  out += ",\"p50\":";
  append_fixed(out, d.p50, 6);
  out += ",\"p90\":";
  append_fixed(out, d.p90, 6);
  out += ",\"p99\":";
  append_fixed(out, d.p99, 6);
  out += ",\"worst\":";
  append_fixed(out, d.worst, 6);
  out += ",\"worst_step\":";
  detail::append_int(out, d.worst_step);
  out += '}';
}

void append_key(std::string& out, const char* key) {
  out += ",\"";
  out += key;
  out += "\":";
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string data_json(const eval_result& r, const eval_context& ctx, const std::string& title) {
  std::string s = "{\"title\":";
  detail::append_json_string(s, title);
  append_key(s, "files");
  s += '[';
  for (std::size_t i = 0; i < ctx.files.size(); ++i) {
    if (i) s += ',';
    detail::append_json_string(s, ctx.files[i]);
  }
  s += ']';
  append_key(s, "judged");
  const auto [lo, hi] = std::minmax_element(r.steps.begin(), r.steps.end());
  s += "{\"first\":";
  detail::append_int(s, r.steps.empty() ? 0 : *lo);
  s += ",\"last\":";
  detail::append_int(s, r.steps.empty() ? 0 : *hi);
  s += ",\"records\":";
  detail::append_int(s, static_cast<std::int64_t>(r.steps.size()));
  s += '}';
  append_key(s, "train");
  if (ctx.train_steps) {
    s += "{\"first\":";
    if (ctx.train_steps->first) {
      detail::append_int(s, *ctx.train_steps->first);
    } else {
      s += "null";
    }
    s += ",\"last\":";
    if (ctx.train_steps->last) {
      detail::append_int(s, *ctx.train_steps->last);
    } else {
      s += "null";
    }
    s += '}';
  } else {
    s += "null";
  }
  append_key(s, "overlap");
  detail::append_int(s, static_cast<std::int64_t>(ctx.train_overlap));
  append_key(s, "expert_fraction");
  if (ctx.expert_fraction) {
    append_fixed(s, *ctx.expert_fraction, 6);
  } else {
    s += "null";
  }
  append_key(s, "topology");
  s += fmt::format("{{\"num_layers\":{},\"num_experts\":{},\"num_slots\":{},\"num_ranks\":{}}}",
                   r.topo.num_layers, r.topo.num_experts, r.topo.num_slots, r.topo.num_ranks);
  append_key(s, "bound");
  if (r.bound) {
    append_distribution(s, *r.bound);
  } else {
    s += "null";
  }
  append_key(s, "buckets");
  s += "{\"width\":";
  detail::append_int(s, r.buckets.width);
  s += ",\"first_step\":";
  detail::append_list(s, r.bucket_first_step.data(), r.bucket_first_step.size());
  s += '}';
  append_key(s, "sampled_steps");
  detail::append_list(s, r.sampled_steps.data(), r.sampled_steps.size());
  append_key(s, "expert_load");
  detail::append_list(s, r.expert_load.data(), static_cast<std::size_t>(r.expert_load.size()));
  append_key(s, "mappings");
  s += '[';
  const candidate_report* identity = find_identity(r);
  for (std::size_t i = 0; i < r.candidates.size(); ++i) {
    const candidate_report& c = r.candidates[i];
    s += i ? ",\n{" : "\n{";
    s += "\"name\":";
    detail::append_json_string(s, c.name);
    append_key(s, "recorded");
    s += c.recorded ? "true" : "false";
    append_key(s, "slots");
    detail::append_int(s, c.num_slots);
    append_key(s, "ranks");
    detail::append_int(s, c.num_ranks);
    append_key(s, "imbalance");
    append_distribution(s, c.imbalance);
    append_key(s, "gap");
    if (c.gap) {
      append_distribution(s, *c.gap);
    } else {
      s += "null";
    }
    append_key(s, "time_saved");
    if (ctx.expert_fraction && identity) {
      append_fixed(
          s, predicted_time_saved(*ctx.expert_fraction, c.imbalance.mean, identity->imbalance.mean),
          6);
    } else {
      s += "null";
    }
    append_key(s, "layer_mean");
    append_fixed_array(s, c.layer_mean_imbalance, 4);
    append_key(s, "heat");
    append_fixed_array(s, c.relative_rank_load.reshaped<Eigen::RowMajor>(), 3);
    // Sampled steps as percent of the mean rank load: integers keep the page small.
    append_key(s, "sampled");
    s += '[';
    for (std::size_t k = 0; k < c.sampled_relative_load.size(); ++k) {
      if (k) s += ',';
      detail::append_int(s, std::llround(100.0 * c.sampled_relative_load[k]));
    }
    s += ']';
    append_key(s, "series_mean");
    append_fixed_array(s, c.bucket_mean, 4);
    append_key(s, "series_max");
    append_fixed_array(s, c.bucket_max, 4);
    append_key(s, "layer_series_mean");
    append_fixed_array(s, c.bucket_layer_mean, 3);
    append_key(s, "layer_series_max");
    append_fixed_array(s, c.bucket_layer_max, 3);
    append_key(s, "replicas");
    if (c.replicas.empty()) {
      s += "null";
    } else {
      detail::append_list(s, c.replicas.data(), c.replicas.size());
    }
    append_key(s, "rank_share");
    append_fixed_array(s, c.rank_share, 4);
    s += '}';
  }
  s += "]}";
  return s;
}

// JSON made safe to sit inside a <script> element: "</" cannot end it early. JSON allows "\/"
// inside strings, and outside strings the sequence cannot occur.
std::string script_safe(const std::string& json) {
  std::string safe;
  safe.reserve(json.size());
  for (std::size_t i = 0; i < json.size(); ++i) {
    safe += json[i];
    if (json[i] == '<' && i + 1 < json.size() && json[i + 1] == '/') safe += '\\';
  }
  return safe;
}

// A static page part with its @TITLE@ replaced by the title.
std::string with_title(std::string part, const std::string& title) {
  const std::string marker = "@TITLE@";
  part.replace(part.find(marker), marker.size(), html_escape(title));
  return part;
}

// The sweep's data and script (a section the script adds to <main>).
std::string sweep_part(const sweep_result& sweep) {
  return detail::kSweepData + script_safe(sweep_json(sweep)) + detail::kSweepScript;
}

}  // namespace

replay_options report_replay_options() {
  replay_options o;
  o.series_buckets = 240;
  o.sampled_steps = 24;
  return o;
}

std::string render_report(const eval_result& result, const eval_context& context,
                          const std::string& title, const sweep_result* sweep) {
  std::string out = with_title(detail::kPageHead, title);
  out += detail::kReportBody;
  out += script_safe(data_json(result, context, title));
  out += detail::kReportTail;
  if (sweep != nullptr) out += sweep_part(*sweep);
  out += detail::kPageEnd;
  return out;
}

std::string render_sweep_report(const sweep_result& sweep, const std::string& title) {
  return with_title(detail::kPageHead, title) + with_title(detail::kSweepBody, title) +
         sweep_part(sweep) + detail::kPageEnd;
}

}  // namespace eplb
