// Mapping formats: names, detection by content, and dispatch to the readers and writers.
#include "eplb/mapping_io.hpp"

#include <string>

#include "eplb/mapping.hpp"
#include "mapping/read_common.hpp"

namespace eplb {

const char* mapping_format_name(mapping_format format) noexcept {
  switch (format) {
    case mapping_format::vllm:
      return "vllm";
    case mapping_format::sglang:
      return "sglang";
    case mapping_format::trtllm:
      return "trtllm";
    case mapping_format::ascend:
      return "ascend";
    case mapping_format::json:
      return "json";
  }
  return "unknown";
}

const char* default_mapping_file_name(mapping_format format) noexcept {
  switch (format) {
    case mapping_format::vllm:
      return "mapping.jsonl";
    case mapping_format::sglang:
      return "sglang_expert_location.json";
    case mapping_format::trtllm:
      return "trtllm_eplb.yaml";
    case mapping_format::ascend:
      return "ascend_expert_map.json";
    case mapping_format::json:
      return "placement.json";
  }
  return "mapping";
}

result<mapping_format> parse_mapping_format(const std::string& name) {
  for (const mapping_format f :
       {mapping_format::vllm, mapping_format::sglang, mapping_format::trtllm,
        mapping_format::ascend, mapping_format::json}) {
    if (name == mapping_format_name(f)) return f;
  }
  return make_error(
      errc::invalid_argument, position{}, "--format",
      "unknown mapping format \"" + name + "\"; expected vllm, sglang, trtllm, ascend or json");
}

namespace {

using detail::json_value;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Classifies a JSON object by its keys.
result<mapping_format> classify(const json_value& obj, const detail::text_locator& where) {
  const std::size_t at = detail::offset_of(obj);
  if (obj.find("record_type") != nullptr) return mapping_format::vllm;
  if (obj.find("physical_to_logical_map") != nullptr) return mapping_format::sglang;
  if (obj.find("moe_layer_count") != nullptr || obj.find("layer_list") != nullptr) {
    return mapping_format::ascend;
  }
  if (obj.find("physical_to_logical") != nullptr || obj.find("format") != nullptr) {
    return mapping_format::json;
  }
  if (obj.find("logical_count") != nullptr) {
    return where.at(errc::invalid_value, at, "logical_count",
                    "this is an SGLang stats file, not a mapping");
  }
  return where.at(errc::invalid_value, at, "",
                  "a JSON object with none of record_type (vLLM), physical_to_logical_map "
                  "(SGLang), moe_layer_count (vllm-ascend) or physical_to_logical (eplb-gen "
                  "JSON); give the format explicitly");
}

bool starts_with_key(std::string_view line, std::string_view key) {
  return line.substr(0, key.size()) == key && line.size() > key.size() && line[key.size()] == ':';
}

}  // namespace

result<mapping_format> detect_mapping_format_text(std::string_view text, const std::string& name) {
  const detail::text_locator where(text, name);
  std::size_t i = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  while (i < text.size() && is_space(text[i])) ++i;
  if (i == text.size()) {
    return where.at(errc::no_records, detail::k_no_offset, "", "file is empty");
  }
  const char c = text[i];
  if (c == '{') {
    // JSON lines (vLLM): the first line is a whole object; else one multi-line document.
    std::size_t end = text.find('\n', i);
    if (end == std::string_view::npos) end = text.size();
    json_value first;
    loader::detail::json_parser line_parser(text.substr(i, end - i));
    if (line_parser.parse(first) && first.kind == json_value::k_object) {
      first.column += i;
      return classify(first, where);
    }
    auto root = detail::parse_json_document(text, where);
    if (!root.ok()) return root.err();
    if (root->kind != json_value::k_object) {
      return detail::type_error(where, *root, "", "a JSON object");
    }
    return classify(*root, where);
  }
  if (c == '[') {
    return where.at(errc::invalid_value, i, "",
                    "a JSON array is a load matrix (stats), not a mapping");
  }
  // YAML: the first line that is not a comment or a document start names a known key.
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t e = text.find('\n', pos);
    if (e == std::string_view::npos) e = text.size();
    const std::string_view line = text.substr(pos, e - pos);
    pos = e + 1;
    std::size_t j = 0;
    while (j < line.size() && is_space(line[j])) ++j;
    if (j == line.size() || line[j] == '#' || line.substr(0, 3) == "---") continue;
    if (starts_with_key(line, "initial_global_assignments") ||
        starts_with_key(line, "layer_updates_per_iter") || starts_with_key(line, "num_slots")) {
      return mapping_format::trtllm;
    }
    break;
  }
  return where.at(errc::invalid_value, i, "",
                  "cannot tell the mapping format (not JSON, not a TensorRT-LLM YAML config); "
                  "give the format explicitly");
}

result<mapping_format> detect_mapping_format(const std::string& path) {
  auto text = read_file(path);
  if (!text.ok()) return text.err();
  return detect_mapping_format_text(*text, path);
}

topology mapping_topology(const mapping_file& mapping, int num_ranks) {
  topology t;
  t.num_layers = mapping.place.num_layers;
  t.num_experts = mapping.place.num_experts;
  t.num_slots = mapping.place.num_slots;
  t.num_ranks = num_ranks > 0 ? num_ranks : mapping.num_ranks;
  return t;
}

result<mapping_file> read_mapping_text(std::string_view text, const std::string& name,
                                       mapping_format format, const mapping_read_options& options) {
  switch (format) {
    case mapping_format::vllm:
      return read_vllm_mapping_text(text, name, options);
    case mapping_format::sglang:
      return read_sglang_mapping_text(text, name, options);
    case mapping_format::trtllm:
      return read_trtllm_yaml_text(text, name, options);
    case mapping_format::ascend:
      return read_ascend_expert_map_text(text, name, options);
    case mapping_format::json:
      return read_plain_json_text(text, name, options);
  }
  return make_error(errc::invalid_argument, position{name, 0, 0}, "", "unknown mapping format");
}

result<mapping_file> read_mapping(const std::string& path, std::optional<mapping_format> format,
                                  const mapping_read_options& options) {
  auto text = read_file(path);
  if (!text.ok()) return text.err();
  if (!format) {
    auto detected = detect_mapping_format_text(*text, path);
    if (!detected.ok()) return detected.err();
    format = *detected;
  }
  return read_mapping_text(*text, path, *format, options);
}

result<std::string> render_mapping(mapping_format format, const placement& p, const topology& topo,
                                   const mapping_render_options& options) {
  switch (format) {
    case mapping_format::vllm:
      return to_vllm_mapping(p, topo);
    case mapping_format::sglang: {
      sglang_export_options o;
      static_cast<layer_id_options&>(o) = options.layers;
      o.num_hidden_layers = options.num_hidden_layers;
      return to_sglang_mapping(p, topo, o);
    }
    case mapping_format::trtllm: {
      trtllm_export_options o;
      static_cast<layer_id_options&>(o) = options.layers;
      o.layer_updates_per_iter = options.layer_updates_per_iter;
      return to_trtllm_yaml(p, topo, o);
    }
    case mapping_format::ascend:
      return to_ascend_expert_map(p, topo);
    case mapping_format::json:
      return to_plain_json(p, topo, options.meta);
  }
  return make_error(errc::invalid_argument, position{}, "--format", "unknown mapping format");
}

}  // namespace eplb
