// eplb-gen's own placement JSON: the placement in every derived form plus the provenance of the
// run (policy, topology, input files with SHA-256, version, predicted imbalance).
#include <filesystem>
#include <string>

#include "eplb/export.hpp"
#include "eplb/sha256.hpp"
#include "mapping/export_common.hpp"

#ifndef EPLB_VERSION
#define EPLB_VERSION "unknown"
#endif

namespace eplb {

result<export_source> describe_source(const std::string& path, const std::string& format) {
  auto digest = sha256_file(path);
  if (!digest.ok()) return digest.err();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    return make_error(errc::io_error, position{path, 0, 0}, "", "cannot stat: " + ec.message());
  }
  return export_source{path, format, static_cast<std::uint64_t>(size), std::move(*digest)};
}

namespace {

void append_key(std::string& out, const char* indent, std::string_view key) {
  out += indent;
  detail::append_json_string(out, key);
  out += ": ";
}

void append_int_field(std::string& out, const char* indent, std::string_view key, std::int64_t v,
                      bool last = false) {
  append_key(out, indent, key);
  detail::append_int(out, v);
  out += last ? "\n" : ",\n";
}

}  // namespace

result<std::string> to_plain_json(const placement& p, const topology& topo,
                                  const export_metadata& meta) {
  if (status s = detail::check_export_input(p, topo); !s.ok()) return s.err();
  for (const auto& [key, value] : meta.extra) {
    for (const char* reserved :
         {"eplb_gen_version", "policy", "topology", "sources", "predicted_imbalance"}) {
      if (key == reserved || key.empty()) {
        return make_error(errc::invalid_argument, position{}, "meta.extra",
                          "key \"" + key + "\" is empty or reserved");
      }
    }
  }
  const auto counts = replica_counts(p);
  const auto l2p = logical_to_physical(p);
  const auto slots = static_cast<std::size_t>(p.num_slots);
  const auto experts = static_cast<std::size_t>(p.num_experts);

  std::string out = "{\n";
  append_key(out, "  ", "format");
  out += "\"eplb-gen-placement\",\n";
  append_int_field(out, "  ", "version", 1);
  append_int_field(out, "  ", "num_layers", p.num_layers);
  append_int_field(out, "  ", "num_experts", p.num_experts);
  append_int_field(out, "  ", "num_slots", p.num_slots);
  append_int_field(out, "  ", "num_ranks", topo.num_ranks);

  append_key(out, "  ", "physical_to_logical");
  out += "[\n";
  for (int l = 0; l < p.num_layers; ++l) {
    out += "    ";
    detail::append_list(out, p.row(l), slots);
    out += l + 1 < p.num_layers ? ",\n" : "\n";
  }
  out += "  ],\n";

  append_key(out, "  ", "logical_to_physical");
  out += "[\n";
  for (int l = 0; l < p.num_layers; ++l) {
    out += "    [";
    for (std::size_t e = 0; e < experts; ++e) {
      if (e > 0) out += ", ";
      const auto& replicas = l2p[static_cast<std::size_t>(l)][e];
      detail::append_list(out, replicas.data(), replicas.size());
    }
    out += l + 1 < p.num_layers ? "],\n" : "]\n";
  }
  out += "  ],\n";

  append_key(out, "  ", "replica_count");
  out += "[\n";
  for (int l = 0; l < p.num_layers; ++l) {
    out += "    ";
    detail::append_list(out, counts.data() + static_cast<std::size_t>(l) * experts, experts);
    out += l + 1 < p.num_layers ? ",\n" : "\n";
  }
  out += "  ],\n";

  append_key(out, "  ", "meta");
  out += "{\n";
  append_key(out, "    ", "eplb_gen_version");
  detail::append_json_string(
      out, meta.eplb_gen_version.empty() ? std::string_view(EPLB_VERSION) : meta.eplb_gen_version);
  out += ",\n";
  append_key(out, "    ", "policy");
  detail::append_json_string(out, meta.policy);
  out += ",\n";
  append_key(out, "    ", "topology");
  out += "{";
  const std::pair<const char*, int> topo_fields[] = {
      {"num_layers", topo.num_layers}, {"num_experts", topo.num_experts},
      {"num_slots", topo.num_slots},   {"num_redundant_experts", topo.num_redundant()},
      {"num_ranks", topo.num_ranks},   {"num_nodes", topo.num_nodes},
      {"num_groups", topo.num_groups}};
  bool first = true;
  for (const auto& [key, value] : topo_fields) {
    if (!first) out += ", ";
    first = false;
    detail::append_json_string(out, key);
    out += ": ";
    detail::append_int(out, value);
  }
  out += "},\n";
  append_key(out, "    ", "sources");
  out += "[";
  for (std::size_t i = 0; i < meta.sources.size(); ++i) {
    const auto& src = meta.sources[i];
    out += i > 0 ? ",\n      {" : "\n      {";
    out += "\"path\": ";
    detail::append_json_string(out, src.path);
    out += ", \"format\": ";
    detail::append_json_string(out, src.format);
    out += ", \"bytes\": ";
    detail::append_int(out, static_cast<std::int64_t>(src.bytes));
    out += ", \"sha256\": ";
    detail::append_json_string(out, src.sha256);
    out += "}";
  }
  out += meta.sources.empty() ? "],\n" : "\n    ],\n";
  append_key(out, "    ", "predicted_imbalance");
  out += "{\"before\": ";
  const std::pair<const char*, const std::optional<double>*> predictions[] = {
      {"before", &meta.imbalance_before}, {"after", &meta.imbalance_after}};
  for (const auto& [key, value] : predictions) {
    if (std::string_view(key) == "after") out += ", \"after\": ";
    if (!value->has_value()) {
      out += "null";
    } else if (!detail::append_double(out, **value)) {
      return make_error(errc::invalid_value, position{}, std::string("meta.imbalance_") + key,
                        "is not a finite number");
    }
  }
  out += "}";
  for (const auto& [key, value] : meta.extra) {
    out += ",\n";
    append_key(out, "    ", key);
    detail::append_json_string(out, value);
  }
  out += "\n  }\n}\n";
  return out;
}

}  // namespace eplb
