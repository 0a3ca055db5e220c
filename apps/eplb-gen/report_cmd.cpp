// `eplb-gen report`: the evaluation as one self-contained HTML page.

#include <fmt/core.h>

#include <memory>

#include "commands.hpp"
#include "eplb/mapping.hpp"
#include "eplb/report.hpp"
#include "eval_flags.hpp"

namespace eplb::cli {

runner add_report(CLI::App& app) {
  auto f = std::make_shared<eval_flags>();
  auto output = std::make_shared<std::string>("report.html");
  auto title = std::make_shared<std::string>("eplb-gen report");
  add_eval_flags(app, *f);
  app.add_option("-o,--output", *output, "HTML file to write")->capture_default_str();
  app.add_option("--title", *title, "Page title")->capture_default_str();
  return [f, output, title]() -> int {
    if (status s = check_output_paths(eval_inputs(*f), {named_path{"-o", *output}}); !s.ok()) {
      return fail(s.err());
    }
    int code = 0;
    auto run = run_eval(*f, report_replay_options(), &code);
    if (!run) return code;
    const std::string html = render_report(run->result, run->context, *title);
    if (status s = write_file_atomic(*output, html); !s.ok()) return fail(s.err());
    if (!f->quiet) fmt::print(stderr, "wrote {} ({} KiB)\n", *output, (html.size() + 1023) / 1024);
    return 0;
  };
}

}  // namespace eplb::cli
