// The HTML report: self-contained, the expected elements, escaped data, bounded size.

#include <simdjson.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "eplb/eval.hpp"
#include "eplb/report.hpp"
#include "eplb/synth.hpp"

using namespace eplb;

namespace {

eval_result judge(int steps) {
  const topology t{12, 32, 40, 8, 1, 1};
  weight_matrix dist(12, 32);
  for (int l = 0; l < 12; ++l) {
    for (int e = 0; e < 32; ++e) dist(l, e) = 1.0 / (1 + (e * 7 + l) % 32);
  }
  synth_options o;
  o.num_steps = steps;
  o.recording = topology{12, 32, 32, 8, 1, 1};
  o.min_batch_tokens = 64;
  o.max_batch_tokens = 256;
  std::vector<eval_candidate> c;
  c.push_back({"identity", identity_placement(t), true});
  c.push_back({"</script><b>m</b>", identity_placement(t)});
  auto rp = replayer::create(t, std::move(c), report_replay_options());
  REQUIRE(rp.ok());
  REQUIRE(synthesize_records(dist, o, *rp).ok());
  auto r = rp->finish();
  REQUIRE(r.ok());
  return std::move(*r);
}

std::string data_of(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"eplb-data\">";
  const auto a = html.find(open);
  const auto b = html.find("</script>", a);
  REQUIRE(a != std::string::npos);
  REQUIRE(b != std::string::npos);
  return html.substr(a + open.size(), b - a - open.size());
}

}  // namespace

TEST_CASE("the report is one self-contained page with the expected elements") {
  const eval_result r = judge(200);
  eval_context ctx;
  ctx.files = {"trace.jsonl"};
  ctx.expert_fraction = 0.2;
  const std::string html = render_report(r, ctx, "A <title> & more");
  CHECK(html.rfind("<!doctype html>", 0) == 0);
  CHECK(html.find("<title>A &lt;title&gt; &amp; more</title>") != std::string::npos);
  for (const char* id : {"id=\"summary\"", "id=\"heat-before\"", "id=\"heat-after\"",
                         "id=\"series\"", "id=\"layers\"", "id=\"replicas\"", "id=\"step\"",
                         "id=\"series-layer\"", "id=\"errors\"", "data-ready"}) {
    CHECK(html.find(id) != std::string::npos);
  }
  // Nothing is fetched: no external script, style, image or font.
  for (const char* ext : {"src=", "href=", "http://", "https://", "@import", "url("}) {
    CHECK(html.find(ext) == std::string::npos);
  }
  // The data block parses as JSON, and a mapping name cannot close the script element.
  const std::string data = data_of(html);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(data).get(doc) == simdjson::SUCCESS);
  CHECK(std::string_view(doc["mappings"].at(1)["name"]) == "</script><b>m</b>");
  CHECK(int64_t(doc["topology"]["num_layers"]) == 12);
  CHECK(simdjson::dom::array(doc["mappings"].at(0)["heat"]).size() == 12 * 8);
  CHECK(simdjson::dom::array(doc["mappings"].at(0)["replicas"]).size() == 12 * 32);
  CHECK(simdjson::dom::array(doc["expert_load"]).size() == 12 * 32);
  CHECK(double(doc["mappings"].at(0)["imbalance"]["mean"]) ==
        Approx(r.candidates[0].imbalance.mean).epsilon(1e-5));
  CHECK(double(doc["mappings"].at(0)["time_saved"]) == 0);
}

TEST_CASE("the report's size does not grow with the number of steps") {
  eval_context ctx;
  ctx.files = {"trace.jsonl"};
  const std::size_t small = render_report(judge(1000), ctx, "r").size();
  const std::size_t large = render_report(judge(10000), ctx, "r").size();
  CHECK(large < small * 3 / 2);
  CHECK(large < 2 * 1024 * 1024);
}

TEST_CASE("the sweep has a page of its own and a section of the evaluation page") {
  sweep_result s;
  s.files = {"</script>trace.jsonl"};
  s.num_layers = 12;
  s.num_experts = 32;
  s.tolerance = 0.005;
  sweep_point p;
  p.ep = 8;
  p.planned = true;
  p.slots_per_rank = 4;
  p.mean = 1.25;
  s.points.push_back(p);
  recommend_redundant(s);
  const std::string page = render_sweep_report(s, "Sweep <1>");
  CHECK(page.rfind("<!doctype html>", 0) == 0);
  CHECK(page.find("<h1>Sweep &lt;1&gt;</h1>") != std::string::npos);
  CHECK(page.find("data-sweep-ready") != std::string::npos);
  CHECK(page.find("id=\"eplb-data\"") == std::string::npos);  // no evaluation on this page
  for (const char* ext : {"src=", "href=", "http://", "https://", "@import", "url("}) {
    CHECK(page.find(ext) == std::string::npos);
  }
  // The embedded JSON reads back as the sweep, and a file name cannot close the script element.
  const std::string open = "<script type=\"application/json\" id=\"eplb-sweep\">";
  const auto a = page.find(open);
  const auto b = page.find("</script>", a);
  REQUIRE(a != std::string::npos);
  std::string data = page.substr(a + open.size(), b - a - open.size());
  auto back = parse_sweep_json(data, "page");
  REQUIRE(back.ok());
  CHECK(back->files == s.files);
  CHECK(back->points.front().mean == 1.25);

  eval_context ctx;
  ctx.files = {"trace.jsonl"};
  const std::string both = render_report(judge(200), ctx, "r", &s);
  CHECK(both.find("id=\"eplb-data\"") != std::string::npos);
  CHECK(both.find("id=\"eplb-sweep\"") != std::string::npos);
  CHECK(both.find("</body></html>") == both.size() - std::string("</body></html>\n").size());
  CHECK(render_report(judge(200), ctx, "r").find("eplb-sweep") == std::string::npos);
}
