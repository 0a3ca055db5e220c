// Trace synthesis. The random source is a fixed xoshiro256** with hand-written samplers (not the
// standard library's distributions, whose algorithms differ between implementations), so a seed
// gives the same trace on every machine.

#include "eplb/synth.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "eplb/flags.hpp"
#include "mapping/export_common.hpp"

namespace eplb {

namespace {

class rng {
 public:
  explicit rng(std::uint64_t seed) {
    for (auto& s : s_) {  // splitmix64 seeding
      seed += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      s = z ^ (z >> 31);
    }
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal() {
    // Box-Muller; 1 - u keeps the log argument positive.
    const double u1 = 1.0 - uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  // Binomial(n, p): exact inversion for small means, a rounded normal otherwise (the trace only
  // needs realistic counts, not an exact law).
  std::int64_t binomial(std::int64_t n, double p) {
    if (n <= 0 || p <= 0) return 0;
    if (p >= 1) return n;
    const double mean = static_cast<double>(n) * p;
    if (mean < 30) {
      const double q = -std::log1p(-p);
      std::int64_t k = 0;
      double sum = 0;
      for (;;) {  // waiting times of a Bernoulli process
        sum += -std::log(1.0 - uniform()) / static_cast<double>(n - k);
        if (sum > q) break;
        if (++k == n) break;
      }
      return k;
    }
    const double sd = std::sqrt(mean * (1 - p));
    const auto k = static_cast<std::int64_t>(std::llround(mean + sd * normal()));
    return std::clamp<std::int64_t>(k, 0, n);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

std::vector<std::int32_t> make_p2l(const topology& t, bool shuffle, rng& g) {
  std::vector<std::int32_t> row(static_cast<std::size_t>(t.num_slots));
  std::vector<std::int32_t> all;
  all.reserve(static_cast<std::size_t>(t.num_layers) * t.num_slots);
  for (int l = 0; l < t.num_layers; ++l) {
    for (int s = 0; s < t.num_slots; ++s) row[s] = s % t.num_experts;
    if (shuffle) {
      for (int s = t.num_slots - 1; s > 0; --s) std::swap(row[s], row[g.below(s + 1)]);
    }
    all.insert(all.end(), row.begin(), row.end());
  }
  return all;
}

}  // namespace

result<weight_matrix> read_counts_json(const std::string& path) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.load(path).get(doc); err) {
    return make_error(errc::invalid_json, position{path, 0, 0}, "",
                      std::string("cannot parse: ") + simdjson::error_message(err));
  }
  simdjson::dom::array rows;
  if (doc.is_object()) {
    if (doc["counts"].get_array().get(rows)) {
      return make_error(errc::missing_field, position{path, 0, 0}, "counts",
                        "expected an array of per-layer arrays");
    }
  } else if (doc.get_array().get(rows)) {
    return make_error(errc::wrong_type, position{path, 0, 0}, "",
                      "expected {\"counts\": [[...]]} or a 2-D array");
  }
  std::vector<std::vector<double>> data;
  std::size_t l = 0;
  for (auto row_el : rows) {
    simdjson::dom::array row;
    if (row_el.get_array().get(row)) {
      return make_error(errc::wrong_type, position{path, 0, 0}, fmt::format("counts[{}]", l),
                        "expected an array");
    }
    data.emplace_back();
    std::size_t e = 0;
    for (auto v : row) {
      double x = 0;
      if (v.get_double().get(x) || !std::isfinite(x) || x < 0) {
        return make_error(errc::invalid_value, position{path, 0, 0},
                          fmt::format("counts[{}][{}]", l, e), "expected a non-negative number");
      }
      data.back().push_back(x);
      ++e;
    }
    if (data.back().size() != data.front().size() || data.back().empty()) {
      return make_error(errc::shape_mismatch, position{path, 0, 0}, fmt::format("counts[{}]", l),
                        fmt::format("has {} experts, expected {}", data.back().size(),
                                    data.front().size()));
    }
    ++l;
  }
  if (data.empty()) return make_error(errc::no_records, position{path, 0, 0}, "counts", "no layers");
  weight_matrix w(static_cast<Eigen::Index>(data.size()), static_cast<Eigen::Index>(data[0].size()));
  for (std::size_t i = 0; i < data.size(); ++i) {
    for (std::size_t j = 0; j < data[i].size(); ++j) {
      w(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = data[i][j];
    }
  }
  return w;
}

status validate_synth_options(const synth_options& o) {
  for (const auto& [flag, value] :
       {std::pair{flags::synth_steps, std::int64_t{o.num_steps}},
        std::pair{flags::first_step, o.first_step}, std::pair{flags::top_k, std::int64_t{o.top_k}},
        std::pair{flags::min_batch, std::int64_t{o.min_batch_tokens}},
        std::pair{flags::max_batch, std::int64_t{o.max_batch_tokens}},
        std::pair{flags::burst_steps, std::int64_t{o.burst_steps}},
        std::pair{flags::remap_every, std::int64_t{o.remap_every}},
        std::pair{flags::regime_steps, std::int64_t{o.regime_steps}}}) {
    if (status s = check_flag(flag, value); !s.ok()) return s;
  }
  if (o.max_batch_tokens < o.min_batch_tokens) {
    return make_error(errc::invalid_argument, position{}, "--max-batch",
                      fmt::format("must be at least --min-batch {}, got {}", o.min_batch_tokens,
                                  o.max_batch_tokens));
  }
  for (const auto& [flag, value] :
       {std::pair{flags::drift, o.drift}, std::pair{flags::drift_speed, o.drift_speed},
        std::pair{flags::burst_prob, o.burst_prob},
        std::pair{flags::burst_factor, o.burst_factor}}) {
    if (status s = check_flag(flag, value); !s.ok()) return s;
  }
  return validate_topology(o.recording);
}

namespace {

// The checks both synthesize_* functions make before anything is written or emitted.
status check_input(const weight_matrix& dist, const synth_options& o) {
  const topology& t = o.recording;
  if (dist.rows() != t.num_layers || dist.cols() != t.num_experts) {
    return make_error(errc::invalid_argument, position{}, "distribution",
                      fmt::format("shape {}x{} does not match the recording topology {}x{}",
                                  dist.rows(), dist.cols(), t.num_layers, t.num_experts));
  }
  return validate_synth_options(o);
}

// Samples the trace and hands every step with load to `emit(step, phys, p2l)`; both synthesize_*
// functions share it, so a seed gives the same loads whether they are written as JSON or not.
// The input has passed check_input.
template <class Emit>
status generate(const weight_matrix& dist, const synth_options& o, Emit&& emit) {
  const topology& t = o.recording;
  rng g(o.seed);
  const int L = t.num_layers, E = t.num_experts, P = t.num_slots;
  std::vector<double> base(static_cast<std::size_t>(L) * E);
  for (int l = 0; l < L; ++l) {
    double sum = dist.row(l).sum();
    for (int e = 0; e < E; ++e) {
      // A floor keeps never-seen experts possible, as in real traffic.
      base[static_cast<std::size_t>(l) * E + e] = (sum > 0 ? dist(l, e) / sum : 1.0 / E) + 1e-6;
    }
  }
  std::vector<double> walk(base.size(), 0.0), burst_left(base.size(), 0.0);
  const double phi = 1.0 - o.drift_speed;
  const double innov = o.drift * std::sqrt(std::max(0.0, 1.0 - phi * phi));
  if (o.drift > 0) {
    for (double& z : walk) z = o.drift * g.normal();
  }
  std::vector<std::int32_t> p2l = make_p2l(t, o.shuffle_p2l, g);
  // The second mix of a regime-switching trace: expert e takes the base weight of expert
  // mix[l][e]. Drawn only when asked for, so other traces keep their random stream.
  std::vector<int> mix;
  if (o.regime_steps > 0) {
    mix.resize(base.size());
    for (int l = 0; l < L; ++l) {
      int* row = mix.data() + static_cast<std::size_t>(l) * E;
      std::iota(row, row + E, 0);
      for (int e = E - 1; e > 0; --e)
        std::swap(row[e], row[g.below(static_cast<std::uint64_t>(e) + 1)]);
    }
  }
  std::vector<std::int64_t> logical(static_cast<std::size_t>(E));
  std::vector<std::int64_t> phys(static_cast<std::size_t>(L) * P);
  std::vector<double> prob(static_cast<std::size_t>(E));
  std::vector<std::vector<int>> replicas(static_cast<std::size_t>(E));

  const double log_min = std::log(static_cast<double>(o.min_batch_tokens));
  const double log_max = std::log(static_cast<double>(o.max_batch_tokens));
  for (int i = 0; i < o.num_steps; ++i) {
    if (o.remap_every > 0 && i > 0 && i % o.remap_every == 0) p2l = make_p2l(t, true, g);
    const auto tokens = static_cast<std::int64_t>(
        std::llround(std::exp(log_min + (log_max - log_min) * g.uniform())));
    std::int64_t total = 0;
    const bool second_mix = o.regime_steps > 0 && (i / o.regime_steps) % 2 == 1;
    for (int l = 0; l < L; ++l) {
      double psum = 0;
      for (int e = 0; e < E; ++e) {
        const std::size_t idx = static_cast<std::size_t>(l) * E + e;
        if (o.drift > 0) walk[idx] = phi * walk[idx] + innov * g.normal();
        if (burst_left[idx] > 0) burst_left[idx] -= 1;
        const std::size_t from =
            second_mix ? static_cast<std::size_t>(l) * E + static_cast<std::size_t>(mix[idx]) : idx;
        double w = base[from] * std::exp(walk[idx]);
        if (burst_left[idx] > 0) w *= o.burst_factor;
        prob[e] = w;
        psum += w;
      }
      if (o.burst_prob > 0 && g.uniform() < o.burst_prob) {
        burst_left[static_cast<std::size_t>(l) * E + g.below(E)] = o.burst_steps;
      }
      // Multinomial draw of tokens * top_k choices through conditional binomials.
      std::int64_t left = tokens * o.top_k;
      double pleft = psum;
      for (int e = 0; e < E; ++e) {
        const std::int64_t c = (e == E - 1) ? left : g.binomial(left, prob[e] / pleft);
        logical[e] = c;
        left -= c;
        pleft -= prob[e];
        if (pleft <= 0) pleft = 1e-300;
      }
      // Split each expert's count over its replicas as vLLM's hash dispatch does: about evenly.
      for (auto& r : replicas) r.clear();
      const std::int32_t* row = p2l.data() + static_cast<std::size_t>(l) * P;
      for (int s = 0; s < P; ++s) replicas[row[s]].push_back(s);
      std::int64_t* prow = phys.data() + static_cast<std::size_t>(l) * P;
      for (int e = 0; e < E; ++e) {
        const auto n = static_cast<std::int64_t>(replicas[e].size());
        for (std::int64_t j = 0; j < n; ++j) {
          prow[replicas[e][j]] = logical[e] / n + (j < logical[e] % n ? 1 : 0);
        }
        total += logical[e];
      }
    }
    if (total == 0) continue;  // vLLM skips steps without load
    if (status s = emit(o.first_step + i, phys, p2l); !s.ok()) return s;
  }
  return status::success();
}

}  // namespace

status synthesize_stats(const weight_matrix& dist, const synth_options& o,
                        const std::function<status(std::string_view)>& write) {
  if (status s = check_input(dist, o); !s.ok()) return s;
  const topology& t = o.recording;
  const int L = t.num_layers, P = t.num_slots, R = t.num_ranks;
  std::string model;
  detail::append_json_string(model, o.model);
  std::string line;
  if (o.write_meta) {
    line = fmt::format(
        "{{\"record_type\": \"eplb_load_meta\", \"version\": 1, \"model\": {}, "
        "\"num_ranks\": {}, \"num_groups\": {}, \"num_nodes\": {}, \"num_layers\": {}, "
        "\"num_redundant_experts\": {}}}\n",
        model, R, t.num_groups, t.num_nodes, L, t.num_redundant());
    if (status s = write(line); !s.ok()) return s;
  }
  const int k = R > 0 ? P / R : 0;
  return generate(
      dist, o,
      [&](std::int64_t step, const std::vector<std::int64_t>& phys,
          const std::vector<std::int32_t>& p2l) {
        line.clear();
        auto it = std::back_inserter(line);
        fmt::format_to(
            it,
            "{{\"record_type\": \"eplb_load_stats\", \"version\": 1, \"model\": {}, "
            "\"step\": {}, \"next_rearrange\": {}, \"num_ranks\": {}, \"num_layers\": {}, "
            "\"experts_per_rank\": [",
            model, step, 3000 - step, R, L);
        for (int r = 0; r < R; ++r) {
          fmt::format_to(it, "{}[{}, {}]", r ? ", " : "", p2l[r * k], p2l[r * k + k - 1]);
        }
        line += "], \"tokens\": [";
        for (int l = 0; l < L; ++l) {
          line += l ? ", [" : "[";
          for (int r = 0; r < R; ++r) {
            std::int64_t sum = 0;
            for (int s = r * k; s < (r + 1) * k; ++s)
              sum += phys[static_cast<std::size_t>(l) * P + s];
            fmt::format_to(it, "{}{}", r ? ", " : "", sum);
          }
          line += ']';
        }
        // Both matrices are [L][P], written as Python's json.dumps writes nested lists.
        auto append_rows = [&](const char* key, const auto& m) {
          fmt::format_to(it, "], \"{}\": [", key);
          for (int l = 0; l < L; ++l) {
            line += l ? ", [" : "[";
            for (int s = 0; s < P; ++s) {
              fmt::format_to(it, "{}{}", s ? ", " : "", m[static_cast<std::size_t>(l) * P + s]);
            }
            line += ']';
          }
        };
        append_rows("expert_load", phys);
        append_rows("p2l_map", p2l);
        line += "]}\n";
        return write(line);
      });
}

status synthesize_stats(const weight_matrix& dist, const synth_options& o, std::ostream& out) {
  return synthesize_stats(dist, o, [&](std::string_view text) -> status {
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out)
      return make_error(errc::io_error, position{}, "", "cannot write the synthesized trace");
    return status::success();
  });
}

status synthesize_records(const weight_matrix& dist, const synth_options& o, stats_sink& sink) {
  if (status s = check_input(dist, o); !s.ok()) return s;
  const topology& t = o.recording;
  stats_meta meta;
  meta.model = o.model;
  meta.num_ranks = t.num_ranks;
  meta.num_groups = t.num_groups;
  meta.num_nodes = t.num_nodes;
  meta.num_layers = t.num_layers;
  meta.num_redundant_experts = t.num_redundant();
  meta.where = position{"<synth>", 1, 0};
  stats_record rec;
  rec.num_layers = t.num_layers;
  rec.num_slots = t.num_slots;
  rec.num_experts = t.num_experts;
  rec.num_ranks = t.num_ranks;
  rec.meta = o.write_meta ? &meta : nullptr;
  std::uint64_t line = o.write_meta ? 1 : 0;
  return generate(dist, o, [&](std::int64_t step, const std::vector<std::int64_t>& phys,
                               const std::vector<std::int32_t>& p2l) {
    rec.step = step;
    rec.expert_load = phys.data();
    rec.p2l_map = p2l.data();
    rec.where = position{"<synth>", ++line, 0};
    return sink.on_record(rec);
  });
}

}  // namespace eplb
