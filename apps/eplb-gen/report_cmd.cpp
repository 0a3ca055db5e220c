// `eplb-gen report`: the evaluation as one self-contained HTML page, with the sweep of
// `eplb-gen sweep --json` (--sweep) as a section of it or as a page of its own.

#include <fmt/core.h>

#include <memory>
#include <optional>

#include "commands.hpp"
#include "eplb/mapping.hpp"
#include "eplb/report.hpp"
#include "eplb/sweep.hpp"
#include "eval_flags.hpp"

namespace eplb::cli {

runner add_report(CLI::App& app) {
  auto f = std::make_shared<eval_flags>();
  auto output = std::make_shared<std::string>("report.html");
  auto title = std::make_shared<std::string>("eplb-gen report");
  auto sweep_file = std::make_shared<std::string>();
  add_eval_flags(app, *f);
  app.add_option("-o,--output", *output, "HTML file to write")->capture_default_str();
  app.add_option("--title", *title, "Page title")->capture_default_str();
  app.add_option("--sweep", *sweep_file,
                 "JSON of `eplb-gen sweep --json`: add its section (alone: a page of the sweep)");
  return [f, output, title, sweep_file]() -> int {
    std::vector<named_path> inputs = eval_inputs(*f);
    if (!sweep_file->empty()) inputs.push_back(named_path{"--sweep", *sweep_file});
    if (status s = check_output_paths(inputs, {named_path{"-o", *output}}); !s.ok()) {
      return fail(s.err());
    }
    std::optional<sweep_result> sweep;
    if (!sweep_file->empty()) {
      auto parsed = read_sweep_json(*sweep_file);
      if (!parsed) return fail(parsed.err());
      sweep = std::move(*parsed);
    }
    std::string html;
    if (sweep && f->stats.empty() && f->mappings.empty()) {
      html = render_sweep_report(*sweep, *title);
    } else {
      int code = 0;
      auto run = run_eval(*f, report_replay_options(), &code);
      if (!run) return code;
      html = render_report(run->result, run->context, *title, sweep ? &*sweep : nullptr);
    }
    if (status s = write_file_atomic(*output, html); !s.ok()) return fail(s.err());
    if (!f->quiet) fmt::print(stderr, "wrote {} ({} KiB)\n", *output, (html.size() + 1023) / 1024);
    return 0;
  };
}

}  // namespace eplb::cli
