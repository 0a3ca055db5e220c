// Format detection by content and dispatch to the importers.
#include <simdjson.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>

#include "eplb/import.hpp"
#include "stats/import_common.hpp"
#include "stats/text.hpp"

namespace eplb {

namespace fs = std::filesystem;
using detail::cat;

const char* stats_format_name(stats_format format) noexcept {
  switch (format) {
    case stats_format::vllm_jsonl:
      return "vllm_jsonl";
    case stats_format::sglang_json:
      return "sglang_json";
    case stats_format::trtllm_dir:
      return "trtllm_dir";
    case stats_format::matrix_json:
      return "matrix_json";
    case stats_format::matrix_csv:
      return "matrix_csv";
  }
  return "unknown";
}

result<stats_format> parse_stats_format(const std::string& name) {
  if (name == "vllm_jsonl" || name == "vllm" || name == "jsonl") return stats_format::vllm_jsonl;
  if (name == "sglang_json" || name == "sglang") return stats_format::sglang_json;
  if (name == "trtllm_dir" || name == "trtllm") return stats_format::trtllm_dir;
  if (name == "matrix_json" || name == "lmdeploy" || name == "json") {
    return stats_format::matrix_json;
  }
  if (name == "matrix_csv" || name == "csv") return stats_format::matrix_csv;
  return make_error(errc::invalid_argument, position{}, "--stats-format",
                    "unknown format \"" + name +
                        "\"; expected vllm, sglang, trtllm, lmdeploy (matrix_json) or csv");
}

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The offset of the first character after a UTF-8 byte order mark and leading whitespace.
std::size_t content_start(std::string_view text) {
  std::size_t i = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  while (i < text.size() && is_space(text[i])) ++i;
  return i;
}

// A matrix text is JSON when it starts with '[', else CSV.
result<imported_stats> import_matrix_text(const std::string& text, const std::string& name,
                                          const import_options& options) {
  const std::size_t i = content_start(text);
  if (i < text.size() && text[i] == '[') return import_matrix_json_text(text, name, options);
  return import_matrix_csv_text(text, name, options);
}

// Classifies a JSON object by its keys: vLLM record, SGLang stats, or something else (message).
result<stats_format> classify_object(simdjson::dom::object obj, const std::string& path) {
  const position whole{path, 1, 0};
  std::string_view type;
  if (!obj["record_type"].get_string().get(type)) {
    if (type == "eplb_load_meta" || type == "eplb_load_stats") return stats_format::vllm_jsonl;
    std::string what = "\"";
    what.append(type);
    what.append(
        "\" is not a stats record (expected eplb_load_meta or eplb_load_stats; "
        "eplb_initial_mapping is a mapping file, not stats)");
    return make_error(errc::invalid_value, whole, "record_type", what);
  }
  if (obj["logical_count"].error() == simdjson::SUCCESS) return stats_format::sglang_json;
  if (obj["physical_to_logical_map"].error() == simdjson::SUCCESS) {
    return make_error(errc::invalid_value, whole, "physical_to_logical_map",
                      "this is an SGLang mapping (--init-expert-location), not stats");
  }
  if (obj["initial_global_assignments"].error() == simdjson::SUCCESS ||
      obj["layer_list"].error() == simdjson::SUCCESS) {
    return make_error(errc::invalid_value, whole, "", "this is a mapping file, not stats");
  }
  return make_error(errc::invalid_value, whole, "",
                    "a JSON object with neither \"record_type\" (vLLM JSONL) nor "
                    "\"logical_count\" (SGLang)");
}

}  // namespace

namespace detail {

status refuse_torch_archive(const std::string& path) {
  if (ends_with(path, ".pt") || ends_with(path, ".pth")) {
    return make_error(errc::invalid_value, position{path, 0, 0}, "",
                      "torch archives cannot be read; save the tensor as JSON, e.g. "
                      "{\"logical_count\": t.tolist()} for SGLang or t.tolist() for a matrix");
  }
  return status::success();
}

result<stats_format> detect_stats_format_text(std::string& text, bool complete,
                                              const std::string& path,
                                              const std::function<status(std::string&)>& rest) {
  const std::size_t i = content_start(text);
  if (i == text.size()) {
    return make_error(errc::no_records, position{path, 0, 0}, "",
                      complete ? "file is empty" : "the first 8 MiB are blank");
  }
  // Compressed data the reader cannot decompress: name the format instead of parsing bytes.
  struct magic {
    std::string_view bytes;
    const char* name;
  };
  for (const magic& m : {magic{"BZh", "bzip2"},
                         magic{"\xFD"
                               "7zXZ",
                               "xz"},
                         magic{"\x04\x22\x4D\x18", "lz4"}, magic{"PK\x03\x04", "zip"}}) {
    if (text.compare(0, m.bytes.size(), m.bytes) == 0) {
      return make_error(errc::invalid_value, position{path, 0, 0}, "",
                        cat("the data is ", m.name,
                            "-compressed, which eplb-gen does not read; decompress it, or "
                            "compress with gzip or zstd (read as they stream)"));
    }
  }
  const char c = text[i];
  if (c == '[') return stats_format::matrix_json;
  if (c == '{') {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    simdjson::dom::object obj;
    // JSONL: the first line is a whole object.
    std::size_t end = text.find('\n', i);
    if (end == std::string::npos && complete) end = text.size();
    simdjson::error_code first_line = simdjson::SUCCESS;
    if (end != std::string::npos) {
      first_line = parser.parse(text.data() + i, end - i).get(root);
      if (!first_line && !root.get_object().get(obj)) return classify_object(obj, path);
    }
    if (!complete) {
      if (status st = rest(text); !st.ok()) return st.err();
    }
    if (auto err = parser.parse(text).get(root); err) {
      // Neither JSON lines nor one JSON object: JSON lines with a bad first line is the likelier
      // reading, so the message names that line.
      return make_error(
          errc::invalid_json, position{path, first_line ? line_of(text, i) : 0, 0}, "",
          cat("invalid JSON: ", simdjson::error_message(first_line ? first_line : err),
              " (the file is neither JSON lines nor one JSON object)"));
    }
    if (root.get_object().get(obj)) {
      return make_error(errc::invalid_json, position{path, 0, 0}, "", "not a JSON object");
    }
    return classify_object(obj, path);
  }
  if ((c >= '0' && c <= '9') || c == '-' || c == '"' || (c >= 'A' && c <= 'Z') ||
      (c >= 'a' && c <= 'z') || c == '_') {
    return stats_format::matrix_csv;
  }
  // Compressed (gzip, zstd) and binary input goes to the vLLM JSONL reader: it decompresses the
  // former and names the line and the encoding problem of the latter, where the character itself
  // would be unprintable here.
  const auto u = static_cast<unsigned char>(c);
  if (u < 0x20 || u >= 0x7F || text.compare(i, 4, "\x28\xB5\x2F\xFD") == 0) {
    return stats_format::vllm_jsonl;
  }
  return make_error(errc::invalid_value, position{path, 0, 0}, "",
                    cat("cannot tell the stats format from the first character '", c, '\''));
}

}  // namespace detail

result<stats_format> detect_stats_format(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    // The system's reason: a missing file, a symlink loop, a permission.
    return make_error(errc::io_error, position{path, 0, 0}, "",
                      cat("cannot open: ", std::strerror(errno)));
  }
  const fs::path p(path);
  if (S_ISDIR(st.st_mode)) {
    std::error_code ec;
    if (!fs::exists(p / "meta_info.json", ec)) {
      return make_error(errc::invalid_value, position{path, 0, 0}, "",
                        "a directory is read as a TensorRT-LLM expert_statistic folder, but it has "
                        "no meta_info.json; for the stats files in it give a quoted glob, e.g. '" +
                            (p / "*.jsonl").string() + "'");
    }
    return stats_format::trtllm_dir;
  }
  if (p.filename() == "meta_info.json" || ends_with(path, ".safetensors")) {
    return stats_format::trtllm_dir;
  }
  if (status s = detail::refuse_torch_archive(path); !s.ok()) return s.err();
  // A vLLM stats file can be gigabytes: look at its beginning only, unless a multi-line JSON
  // object needs the whole text.
  bool complete = false;
  auto text = detail::read_file_prefix(path, std::size_t{8} << 20, complete);
  if (!text.ok()) return text.err();
  return detail::detect_stats_format_text(*text, complete, path, [&](std::string& whole) {
    auto all = detail::read_whole_file(path);
    if (!all.ok()) return status(all.err());
    whole = std::move(*all);
    return status::success();
  });
}

result<imported_stats> import_matrix(const std::string& path, const import_options& options) {
  auto text = detail::read_whole_file(path);
  if (!text.ok()) return text.err();
  return import_matrix_text(*text, path, options);
}

result<imported_stats> import_stats_as(const std::string& path, stats_format format,
                                       const import_options& options) {
  switch (format) {
    case stats_format::sglang_json:
      return import_sglang(path, options);
    case stats_format::trtllm_dir:
      return import_trtllm(path, options);
    case stats_format::matrix_json:
    case stats_format::matrix_csv:
      return import_matrix(path, options);
    case stats_format::vllm_jsonl:
      break;
  }
  return make_error(errc::invalid_argument, position{path, 0, 0}, "",
                    "vLLM JSONL stats are read by the streaming vLLM reader, not the importers");
}

result<imported_stats> import_stats_text(const std::string& text, const std::string& name,
                                         stats_format format, const import_options& options) {
  switch (format) {
    case stats_format::sglang_json:
      return import_sglang_text(text, name, options);
    case stats_format::matrix_json:
    case stats_format::matrix_csv:
      return import_matrix_text(text, name, options);
    case stats_format::trtllm_dir:
    case stats_format::vllm_jsonl:
      break;
  }
  return make_error(errc::invalid_argument, position{name, 0, 0}, "",
                    cat(stats_format_name(format), " stats are not read from a text"));
}

result<imported_stats> import_stats(const std::string& path, const import_options& options) {
  auto format = detect_stats_format(path);
  if (!format.ok()) return format.err();
  return import_stats_as(path, *format, options);
}

}  // namespace eplb
