// SGLang `--init-expert-location` stats input: {"logical_count": [L][E] or [T][L][E]}; every other
// key is ignored, as SGLang does (a recorder dump carries `rank` and
// `average_utilization_rate_over_window` beside it).
#include <simdjson.h>

#include <utility>

#include "eplb/import.hpp"
#include "stats/import_common.hpp"

namespace eplb {

namespace ondemand = simdjson::ondemand;

namespace {

position location(ondemand::document& doc, const detail::json_text& text) {
  const char* p = nullptr;
  if (doc.current_location().get(p)) p = nullptr;
  return p != nullptr ? text.at(p) : position{text.name, 0, 0};
}

}  // namespace

result<imported_stats> import_sglang_text(const std::string& text, const std::string& name,
                                          const import_options& options) {
  const simdjson::padded_string padded(text);
  const detail::json_text jt{name, padded.data(), padded.size()};
  ondemand::parser parser;
  ondemand::document doc;
  if (auto err = parser.iterate(padded).get(doc); err) {
    return make_error(errc::invalid_json, position{name, 0, 0}, "", simdjson::error_message(err));
  }
  ondemand::object obj;
  if (auto err = doc.get_object().get(obj); err) {
    if (err == simdjson::INCORRECT_TYPE) {
      return make_error(errc::wrong_type, position{name, 1, 0}, "",
                        "expected a JSON object with key \"logical_count\"");
    }
    return make_error(errc::invalid_json, position{name, 0, 0}, "", simdjson::error_message(err));
  }
  detail::step_summer summer(options.steps);
  std::array<std::size_t, detail::k_max_dims> shape{};
  int ndim = 0;
  bool found = false;
  for (auto field_result : obj) {
    ondemand::field field;
    std::string_view key;
    if (auto err = std::move(field_result).get(field); err) {
      return make_error(errc::invalid_json, location(doc, jt), "", simdjson::error_message(err));
    }
    if (auto err = field.unescaped_key().get(key); err) {
      return make_error(errc::invalid_json, location(doc, jt), "", simdjson::error_message(err));
    }
    if (key != "logical_count") continue;
    if (found) {
      return make_error(errc::invalid_value, location(doc, jt), "logical_count",
                        "appears twice in the object");
    }
    found = true;
    if (status s = detail::walk_nested_array(field.value(), jt, "logical_count", 2, 3, summer,
                                             shape, ndim);
        !s.ok()) {
      return s.err();
    }
  }
  if (const char* rest = nullptr; !doc.current_location().get(rest)) {
    return make_error(errc::invalid_json, location(doc, jt), "",
                      "unexpected content after the top-level object");
  }
  if (!found) {
    return make_error(errc::missing_field, position{name, 0, 0}, "logical_count",
                      "no \"logical_count\" key (an SGLang stats file holds "
                      "{\"logical_count\": [[...]]})");
  }
  const std::int64_t total_steps = ndim == 3 ? static_cast<std::int64_t>(shape[0]) : 1;
  const auto& used = summer.used_steps();
  if (used.empty()) {
    return make_error(errc::no_records, position{name, 0, 0}, "logical_count",
                      "the step range selects none of the " + std::to_string(total_steps) +
                          " steps (indices 0.." + std::to_string(total_steps - 1) + ")");
  }
  auto out =
      detail::finish_rows(summer.rows(), options.skip_layers, stats_format::sglang_json, name);
  if (!out.ok()) return out;
  out->info.steps_total = total_steps;
  out->info.steps_used = static_cast<std::int64_t>(used.size());
  out->info.first_step = used.front();
  out->info.last_step = used.back();
  return out;
}

result<imported_stats> import_sglang(const std::string& path, const import_options& options) {
  auto text = detail::read_whole_file(path);
  if (!text.ok()) return text.err();
  return import_sglang_text(*text, path, options);
}

}  // namespace eplb
