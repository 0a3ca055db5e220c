// TensorRT-LLM expert statistics (tensorrt_llm/_torch/expert_statistic.py): meta_info.json plus
// one rank{r}.safetensors per rank whose keys "{iter}_{layer}" hold per-expert bincounts. The sum
// over ranks and iterations follows the reference loader
// (examples/wide_ep/ep_load_balancer/utils.py::load_expert_statistic), including its checks.
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <set>

#include "eplb/import.hpp"
#include "eplb/limits.hpp"
#include "stats/import_common.hpp"
#include "stats/text.hpp"

namespace eplb {

namespace fs = std::filesystem;

namespace {

// Parses a decimal number made of digits only.
template <class T>
bool parse_decimal(std::string_view s, T& out) {
  if (s.empty() || s.front() < '0' || s.front() > '9') return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

struct rank_file {
  long rank = 0;
  std::string path;
};

result<std::vector<rank_file>> list_rank_files(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    return make_error(errc::io_error, position{dir.string(), 0, 0}, "",
                      "cannot list directory: " + ec.message());
  }
  std::vector<rank_file> files;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    // rank{r}.safetensors only: rank{r}_raw.safetensors and cooccurrence_rank{r}.safetensors hold
    // other data and are skipped like the reference loader does.
    const std::string fname = it->path().filename().string();
    constexpr std::string_view prefix = "rank";
    constexpr std::string_view suffix = ".safetensors";
    if (fname.size() <= prefix.size() + suffix.size() || fname.rfind(prefix, 0) != 0 ||
        fname.compare(fname.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string_view digits =
        std::string_view(fname).substr(prefix.size(), fname.size() - prefix.size() - suffix.size());
    long rank = 0;
    if (!parse_decimal(digits, rank)) continue;
    files.push_back(rank_file{rank, it->path().string()});
  }
  if (ec) {
    return make_error(errc::io_error, position{dir.string(), 0, 0}, "",
                      "cannot list directory: " + ec.message());
  }
  // Numeric rank order (rank2 before rank10) so the summary is stable; the sum is exact anyway.
  std::sort(files.begin(), files.end(),
            [](const rank_file& a, const rank_file& b) { return a.rank < b.rank; });
  return files;
}

struct meta_info {
  int num_experts = 0;
  int num_experts_per_token = 0;
};

result<meta_info> read_meta(const std::string& path) {
  auto text = detail::read_whole_file(path);
  if (!text.ok()) return text.err();
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  const position whole{path, 0, 0};
  if (auto err = parser.parse(*text).get(root); err) {
    return make_error(errc::invalid_json, whole, "", simdjson::error_message(err));
  }
  meta_info meta;
  std::int64_t v = 0;
  if (auto err = root["num_experts"].get_int64().get(v); err) {
    return make_error(err == simdjson::NO_SUCH_FIELD ? errc::missing_field : errc::wrong_type,
                      whole, "num_experts", "must be a positive integer");
  }
  if (v <= 0 || v > limits::max_experts) {
    return make_error(errc::out_of_range, whole, "num_experts",
                      detail::cat("must be a positive integer up to the limit of ",
                                  limits::max_experts, ", got ", v));
  }
  meta.num_experts = static_cast<int>(v);
  auto topk = root["num_experts_per_token"];
  if (topk.error() != simdjson::NO_SUCH_FIELD) {
    if (topk.get_int64().get(v) || v < 0 || v > meta.num_experts) {
      return make_error(errc::invalid_value, whole, "num_experts_per_token",
                        "must be an integer in [0, num_experts]");
    }
    meta.num_experts_per_token = static_cast<int>(v);
  }
  return meta;
}

}  // namespace

result<imported_stats> import_trtllm(const std::string& path, const import_options& options) {
  std::error_code ec;
  fs::path dir(path);
  if (!fs::is_directory(dir, ec)) {
    // meta_info.json or one of the rank files names its directory.
    dir = dir.parent_path();
    if (dir.empty()) dir = ".";
  }
  const std::string meta_path = (dir / "meta_info.json").string();
  auto meta = read_meta(meta_path);
  if (!meta.ok()) return meta.err();
  const int num_experts = meta->num_experts;

  auto files = list_rank_files(dir);
  if (!files.ok()) return files.err();
  if (files->empty()) {
    return make_error(errc::no_records, position{dir.string(), 0, 0}, "",
                      "no rank{r}.safetensors files beside meta_info.json");
  }

  // Keys of every file (the reference loader sums by key, so the key set is the union), and the
  // per-layer sum over the selected iterations.
  std::set<std::pair<std::int64_t, int>> keys;
  std::map<int, std::vector<std::int64_t>> sums;
  imported_stats out;
  out.info.format = stats_format::trtllm_dir;
  out.info.files.push_back(meta_path);
  for (const auto& rf : *files) {
    auto st = read_safetensors(rf.path);
    if (!st.ok()) return st.err();
    out.info.files.push_back(rf.path);
    const position whole{rf.path, 0, 0};
    for (const auto& entry : st->entries) {
      const std::string_view key(entry.name);
      const std::size_t us = key.find('_');
      std::int64_t iter = 0;
      int layer = 0;
      if (us == std::string_view::npos || !parse_decimal(key.substr(0, us), iter) ||
          !parse_decimal(key.substr(us + 1), layer)) {
        return make_error(errc::invalid_value, whole, entry.name,
                          "key is not \"{iteration}_{layer}\" with decimal numbers");
      }
      if (entry.shape.size() != 1 || entry.shape[0] != static_cast<std::uint64_t>(num_experts)) {
        std::string shape = "[";
        for (std::size_t i = 0; i < entry.shape.size(); ++i) {
          if (i > 0) shape += ", ";
          shape += std::to_string(entry.shape[i]);
        }
        shape += "]";
        return make_error(errc::shape_mismatch, whole, entry.name,
                          "shape " + shape + " is not [num_experts] = [" +
                              std::to_string(num_experts) + "] from meta_info.json");
      }
      if (layer >= limits::max_decoder_layers) {
        return make_error(
            errc::limit_exceeded, whole, entry.name,
            detail::cat("layer id ", layer, " is beyond the limit of ", limits::max_decoder_layers,
                        " decoder layers (docs/limits.md)"));
      }
      keys.emplace(iter, layer);
      if (!options.steps.contains(iter)) continue;
      auto values = safetensors_to_int64(*st, entry);
      if (!values.ok()) return values.err();
      auto& sum = sums[layer];
      if (sum.empty()) sum.assign(static_cast<std::size_t>(num_experts), 0);
      for (int e = 0; e < num_experts; ++e) {
        const std::int64_t v = (*values)[static_cast<std::size_t>(e)];
        auto& cell = sum[static_cast<std::size_t>(e)];
        if (v < 0 || __builtin_add_overflow(cell, v, &cell)) {
          return make_error(v < 0 ? errc::invalid_value : errc::overflow, whole,
                            entry.name + "[" + std::to_string(e) + "]",
                            v < 0 ? "negative count " + std::to_string(v)
                                  : std::string("sum of counts exceeds 2^63-1"));
        }
      }
    }
  }
  const position where_dir{dir.string(), 0, 0};
  if (keys.empty()) {
    return make_error(errc::no_records, where_dir, "", "the rank files hold no statistics");
  }

  // The reference loader's checks: contiguous iterations, every (iteration, layer) present.
  std::set<std::int64_t> iters;
  std::set<int> layers;
  for (const auto& [it, l] : keys) {
    iters.insert(it);
    layers.insert(l);
  }
  // Iterations are >= 0 (digits only), so `it - first` cannot overflow (`first + k` could).
  const std::int64_t first = *iters.begin();
  std::int64_t k = 0;
  for (std::int64_t it : iters) {
    if (it - first != k) {
      return make_error(errc::invalid_value, where_dir, "",
                        "iterations are not contiguous: " + std::to_string(first + k) +
                            " is missing between " + std::to_string(first) + " and " +
                            std::to_string(*iters.rbegin()));
    }
    ++k;
  }
  if (layers.size() > static_cast<std::size_t>(limits::max_layers) ||
      static_cast<std::int64_t>(layers.size()) * num_experts > limits::max_cells) {
    return make_error(errc::limit_exceeded, where_dir, "",
                      detail::cat(layers.size(), " layers of ", num_experts,
                                  " experts exceed the limits of ", limits::max_layers,
                                  " layers and ", limits::max_cells, " cells (docs/limits.md)"));
  }
  for (std::int64_t it : iters) {
    for (int l : layers) {
      if (keys.count({it, l}) == 0) {
        return make_error(errc::missing_field, where_dir,
                          std::to_string(it) + "_" + std::to_string(l),
                          "iteration " + std::to_string(it) + " has no statistics for layer " +
                              std::to_string(l) + " (no rank file holds this key)");
      }
    }
  }

  std::vector<std::int64_t> used;
  for (std::int64_t it : iters) {
    if (options.steps.contains(it)) used.push_back(it);
  }
  if (used.empty()) {
    return make_error(errc::no_records, where_dir, "",
                      "the iteration range selects none of the recorded iterations " +
                          std::to_string(*iters.begin()) + ".." + std::to_string(*iters.rbegin()));
  }

  const auto num_layers = static_cast<Eigen::Index>(layers.size());
  out.load.resize(num_layers, num_experts);
  Eigen::Index row = 0;
  for (int l : layers) {
    const auto& sum = sums[l];
    for (int e = 0; e < num_experts; ++e) out.load(row, e) = sum[static_cast<std::size_t>(e)];
    out.info.layer_ids.push_back(l);
    ++row;
  }
  out.info.num_layers = static_cast<int>(num_layers);
  out.info.num_experts = num_experts;
  out.info.steps_total = static_cast<std::int64_t>(iters.size());
  out.info.steps_used = static_cast<std::int64_t>(used.size());
  out.info.first_step = used.front();
  out.info.last_step = used.back();
  out.info.num_ranks = static_cast<int>(files->size());
  out.info.num_experts_per_token = meta->num_experts_per_token;
  return out;
}

}  // namespace eplb
