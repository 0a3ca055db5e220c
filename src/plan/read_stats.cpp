// The stats half of the plan pipeline: vLLM JSONL streams through the aggregator; the other
// engines' formats go through the importers and several files of one format are summed.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/files.hpp"
#include "eplb/flags.hpp"
#include "eplb/import.hpp"
#include "eplb/plan.hpp"
#include "stats/import_common.hpp"

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

// A stats input that can be read only once (a FIFO, a pipe, standard input): opened once, its
// format told from a buffered prefix, which the reader or the importer then takes first.
struct stream_input {
  std::string path;
  int fd = -1;
  std::string prefix;
  bool complete = false;  // the prefix is the whole input
  stream_input() = default;
  stream_input(const stream_input&) = delete;
  stream_input& operator=(const stream_input&) = delete;
  ~stream_input() {
    if (fd >= 0) ::close(fd);
  }

  // Reads up to `limit` more bytes into the prefix; complete once the input ended.
  status fill(std::uint64_t limit) {
    char chunk[1 << 16];
    std::uint64_t got = 0;
    while (!complete && got < limit) {
      const ssize_t n = ::read(
          fd, chunk, static_cast<std::size_t>(std::min<std::uint64_t>(sizeof chunk, limit - got)));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        return make_error(errc::io_error, position{path, 0, 0}, "",
                          std::string("cannot read: ") + std::strerror(errno));
      }
      if (n == 0) complete = true;
      prefix.append(chunk, static_cast<std::size_t>(n));
      got += static_cast<std::uint64_t>(n);
    }
    return status::success();
  }
};

bool is_stream(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode));
}

// Bytes of a stream looked at to tell its format (a vLLM file is streamed after them).
constexpr std::uint64_t detect_prefix_bytes = std::uint64_t{8} << 20;

status read_vllm(const plan_request& req, const std::vector<std::string>& files, plan_outcome* out,
                 step_sampler* sampler, const std::vector<std::unique_ptr<stream_input>>& streams) {
  if (req.skip_layers != 0) {
    return make_error(errc::invalid_argument, position{}, "--skip-layers",
                      "applies to SGLang and matrix stats; vLLM stats hold MoE layers only");
  }
  auto agg = make_aggregator(req.device);
  if (!agg) return agg.err();
  stats_read_options ropt;
  ropt.steps = req.steps;
  ropt.threads = effective_threads(req.policy.threads);
  ropt.progress = req.progress;
  ropt.batch_bytes = req.max_line_bytes;
  ropt.allow_partial_tail = req.allow_partial_tail;
  // The reader takes over the prefixes (up to 8 MiB each): nothing else reads them any more.
  for (const auto& in : streams) {
    ropt.opened.push_back(opened_input{in->path, in->fd, std::move(in->prefix)});
  }
  // Steps are sampled on their way to the aggregator (per-step planning, held-out estimates).
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
                     stats_format format, plan_outcome* out,
                     const std::vector<std::unique_ptr<stream_input>>& streams) {
  import_options opt;
  opt.steps = req.steps;
  opt.skip_layers = req.skip_layers;
  load_matrix sum;
  import_info info;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto stream = std::find_if(streams.begin(), streams.end(),
                                     [&](const auto& in) { return in->path == files[i]; });
    result<imported_stats> one = make_error(errc::internal, position{}, "", "unread");
    if (stream != streams.end()) {
      // The whole text (bounded like a file) after the prefix detection read.
      if (status st = (*stream)->fill(limits::max_import_file_bytes + 1); !st.ok()) return st;
      if ((*stream)->prefix.size() > limits::max_import_file_bytes) {
        return detail::whole_file_too_large(files[i]);
      }
      one = import_stats_text((*stream)->prefix, files[i], format, opt);
    } else {
      one = import_stats_as(files[i], format, opt);
    }
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
  std::vector<std::unique_ptr<stream_input>> streams;
  if (req.stats_format != "auto") {
    auto f = requested_format(req.stats_format);
    if (!f.ok()) return f.err();
    format = *f;
    for (const std::string& file : *files) {
      if (status s = detail::refuse_torch_archive(file); !s.ok()) return s;
    }
  } else {
    // Every file by content; they must all be of one format.
    for (const std::string& file : *files) {
      result<stats_format> f = make_error(errc::internal, position{}, "", "undetected");
      if (is_stream(file)) {
        // Read once: the prefix detection looks at stays for the reader (no reopen).
        auto in = std::make_unique<stream_input>();
        in->path = file;
        in->fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
        if (in->fd < 0) {
          return make_error(errc::io_error, position{file, 0, 0}, "",
                            std::string("cannot open: ") + std::strerror(errno));
        }
        if (status st = in->fill(detect_prefix_bytes); !st.ok()) return st;
        stream_input& s = *in;
        f = detail::detect_stats_format_text(s.prefix, s.complete, file, [&s](std::string&) {
          return s.fill(limits::max_import_file_bytes);
        });
        streams.push_back(std::move(in));
      } else {
        f = detect_stats_format(file);
      }
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
  status st;
  if (*format == stats_format::vllm_jsonl) {
    st = read_vllm(req, *files, out, sampler, streams);
  } else {
    // Other formats hold sums only: the sampler stays empty.
    st = read_imported(req, *files, *format, out, streams);
  }
  if (!st.ok()) return st;
  // Nothing to balance: every placement would be "perfect" and every figure 0/0.
  if (!(out->loads.array() != 0).any()) {
    return make_error(errc::no_records, position{}, "--stats",
                      "every load in the selected stats is 0: there is nothing to balance");
  }
  return status::success();
}

}  // namespace eplb
