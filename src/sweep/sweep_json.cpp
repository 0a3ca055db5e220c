// The sweep as JSON (schema 1): written for CI (`sweep --json`) and read back by `report --sweep`.
// Numbers are written shortest-round-trip, so the file is byte-identical for the same sweep and
// reads back to the same doubles.

#include <simdjson.h>

#include <string>

#include "eplb/sweep.hpp"
#include "mapping/export_common.hpp"
#include "stats/import_common.hpp"
#include "stats/text.hpp"

namespace eplb {

namespace {

// Appends `"key": ` after a separator (none before the first key of an object); with `indent`
// the key starts a new line so indented.
class json_writer {
 public:
  std::string out;
  void open(char c) {
    out += c;
    first_ = true;
  }
  void close(char c, const char* indent = nullptr) {
    if (indent != nullptr) {
      out += '\n';
      out += indent;
    }
    out += c;
    first_ = false;
  }
  void item(const char* indent = nullptr) {
    out += first_ ? "" : ",";
    if (indent != nullptr) {
      out += '\n';
      out += indent;
    } else if (!first_) {
      out += ' ';
    }
    first_ = false;
  }
  void key(const char* k, const char* indent = nullptr) {
    item(indent);
    detail::append_json_string(out, k);
    out += ": ";
  }
  void integer(const char* k, std::int64_t v) {
    key(k);
    detail::append_int(out, v);
  }
  void number(const char* k, double v) {
    key(k);
    if (!detail::append_double(out, v)) out += "null";
  }
  void optional_number(const char* k, const std::optional<double>& v) {
    if (v) {
      number(k, *v);
    } else {
      key(k);
      out += "null";
    }
  }
  void text(const char* k, const std::string& v) {
    key(k);
    detail::append_json_string(out, v);
  }
  void boolean(const char* k, bool v) {
    key(k);
    out += v ? "true" : "false";
  }
  template <class T>
  void int_list(const char* k, const std::vector<T>& v) {
    key(k);
    detail::append_list(out, v.data(), v.size());
  }
  void string_list(const char* k, const std::vector<std::string>& v, const char* indent = nullptr) {
    key(k, indent);
    open('[');
    for (const std::string& s : v) {
      item();
      detail::append_json_string(out, s);
    }
    close(']');
  }

 private:
  bool first_ = true;
};

void write_memory(json_writer& w, const expert_memory& m) {
  w.open('{');
  w.text("source", m.source);
  w.text("family", m.family);
  w.integer("num_hidden_layers", m.num_hidden_layers);
  w.integer("moe_layers", m.moe_layers);
  w.integer("num_experts", m.num_experts);
  w.integer("hidden_size", m.hidden_size);
  w.integer("moe_intermediate_size", m.moe_intermediate_size);
  w.number("bytes_per_weight", m.bytes_per_weight);
  w.text("weight_type", m.weight_type);
  w.number("expert_bytes", m.expert_bytes);
  w.close('}');
}

void write_point(json_writer& w, const sweep_point& p) {
  w.open('{');
  w.integer("ep", p.ep);
  w.integer("redundant", p.redundant);
  w.boolean("planned", p.planned);
  if (!p.planned) {
    w.text("skipped", p.skipped);
    w.int_list("nearest", p.nearest);
    w.close('}');
    return;
  }
  w.integer("slots_per_rank", p.slots_per_rank);
  w.number("mean", p.mean);
  w.number("p99", p.p99);
  w.number("worst", p.worst);
  w.number("identity_mean", p.identity_mean);
  w.optional_number("time_saved", p.time_saved);
  w.optional_number("extra_bytes_per_gpu", p.extra_bytes_per_gpu);
  w.boolean("reference", p.reference);
  w.number("half_life", p.half_life);
  w.close('}');
}

// Reads fields of one JSON object, naming `path.field` in errors.
struct object_reader {
  simdjson::dom::object obj;
  std::string path;
  const std::string& file;

  error fail(errc code, const char* field, const char* what) const {
    return make_error(code, position{file, 0, 0}, detail::cat(path, field), what);
  }
  result<simdjson::dom::element> get(const char* field) const {
    simdjson::dom::element e;
    if (obj[field].get(e)) return fail(errc::missing_field, field, "is missing");
    return e;
  }
  template <class T>
  status read_int(const char* field, T& out) const {
    auto e = get(field);
    if (!e) return e.err();
    std::int64_t v = 0;
    if (e->get_int64().get(v)) return fail(errc::wrong_type, field, "must be an integer");
    out = static_cast<T>(v);
    return status::success();
  }
  status read_number(const char* field, double& out) const {
    auto e = get(field);
    if (!e) return e.err();
    if (e->get_double().get(out)) return fail(errc::wrong_type, field, "must be a number");
    return status::success();
  }
  status read_optional(const char* field, std::optional<double>& out) const {
    auto e = get(field);
    if (!e) return e.err();
    if (e->is_null()) {
      out.reset();
      return status::success();
    }
    double v = 0;
    if (e->get_double().get(v)) return fail(errc::wrong_type, field, "must be a number or null");
    out = v;
    return status::success();
  }
  status read_string(const char* field, std::string& out) const {
    auto e = get(field);
    if (!e) return e.err();
    std::string_view v;
    if (e->get_string().get(v)) return fail(errc::wrong_type, field, "must be a string");
    out = std::string(v);
    return status::success();
  }
  status read_bool(const char* field, bool& out) const {
    auto e = get(field);
    if (!e) return e.err();
    if (e->get_bool().get(out)) return fail(errc::wrong_type, field, "must be true or false");
    return status::success();
  }
  result<object_reader> child(const char* field) const {
    auto e = get(field);
    if (!e) return e.err();
    simdjson::dom::object o;
    if (e->get_object().get(o)) return fail(errc::wrong_type, field, "must be an object");
    return object_reader{o, detail::cat(path, field, '.'), file};
  }
  result<simdjson::dom::array> array(const char* field) const {
    auto e = get(field);
    if (!e) return e.err();
    simdjson::dom::array a;
    if (e->get_array().get(a)) return fail(errc::wrong_type, field, "must be an array");
    return a;
  }
  template <class T>
  status read_int_list(const char* field, std::vector<T>& out) const {
    auto a = array(field);
    if (!a) return a.err();
    for (simdjson::dom::element e : *a) {
      std::int64_t v = 0;
      if (e.get_int64().get(v)) return fail(errc::wrong_type, field, "must hold integers");
      out.push_back(static_cast<T>(v));
    }
    return status::success();
  }
  status read_string_list(const char* field, std::vector<std::string>& out) const {
    auto a = array(field);
    if (!a) return a.err();
    for (simdjson::dom::element e : *a) {
      std::string_view v;
      if (e.get_string().get(v)) return fail(errc::wrong_type, field, "must hold strings");
      out.emplace_back(v);
    }
    return status::success();
  }
};

// Runs the reads in order; the first failure.
template <class... Reads>
status all_of(Reads&&... reads) {
  status first;
  ((first.ok() ? (void)(first = reads()) : (void)0), ...);
  return first;
}

status read_memory(const object_reader& m, expert_memory& out) {
  return all_of([&] { return m.read_string("source", out.source); },
                [&] { return m.read_string("family", out.family); },
                [&] { return m.read_int("num_hidden_layers", out.num_hidden_layers); },
                [&] { return m.read_int("moe_layers", out.moe_layers); },
                [&] { return m.read_int("num_experts", out.num_experts); },
                [&] { return m.read_int("hidden_size", out.hidden_size); },
                [&] { return m.read_int("moe_intermediate_size", out.moe_intermediate_size); },
                [&] { return m.read_number("bytes_per_weight", out.bytes_per_weight); },
                [&] { return m.read_string("weight_type", out.weight_type); },
                [&] { return m.read_number("expert_bytes", out.expert_bytes); });
}

status read_point(const object_reader& o, sweep_point& p) {
  if (status s = all_of([&] { return o.read_int("ep", p.ep); },
                        [&] { return o.read_int("redundant", p.redundant); },
                        [&] { return o.read_bool("planned", p.planned); });
      !s.ok()) {
    return s;
  }
  if (!p.planned) {
    return all_of([&] { return o.read_string("skipped", p.skipped); },
                  [&] { return o.read_int_list("nearest", p.nearest); });
  }
  return all_of([&] { return o.read_int("slots_per_rank", p.slots_per_rank); },
                [&] { return o.read_number("mean", p.mean); },
                [&] { return o.read_number("p99", p.p99); },
                [&] { return o.read_number("worst", p.worst); },
                [&] { return o.read_number("identity_mean", p.identity_mean); },
                [&] { return o.read_optional("time_saved", p.time_saved); },
                [&] { return o.read_optional("extra_bytes_per_gpu", p.extra_bytes_per_gpu); },
                [&] { return o.read_bool("reference", p.reference); },
                [&] { return o.read_number("half_life", p.half_life); });
}

}  // namespace

std::string sweep_json(const sweep_result& r) {
  json_writer w;
  w.open('{');
  w.key("tool", "  ");
  detail::append_json_string(w.out, "eplb-gen sweep");
  w.integer("schema", 1);
  w.text("version", EPLB_VERSION);
  w.key("stats", "  ");
  w.open('{');
  w.string_list("files", r.files);
  w.text("model", r.model);
  w.integer("num_layers", r.num_layers);
  w.integer("num_experts", r.num_experts);
  w.integer("records", static_cast<std::int64_t>(r.records));
  w.close('}');
  w.key("split", "  ");
  w.open('{');
  w.number("asked", r.split_asked);
  w.integer("train_records", static_cast<std::int64_t>(r.train_records));
  w.integer("heldout_records", static_cast<std::int64_t>(r.heldout_records));
  w.int_list("train_steps", std::vector<std::int64_t>{r.train_first, r.train_last});
  w.int_list("heldout_steps", std::vector<std::int64_t>{r.heldout_first, r.heldout_last});
  w.integer("plan_samples", static_cast<std::int64_t>(r.plan_samples));
  w.integer("heldout_samples", static_cast<std::int64_t>(r.heldout_samples));
  w.close('}');
  w.key("tolerance", "  ");
  detail::append_double(w.out, r.tolerance);
  w.optional_number("expert_fraction", r.expert_fraction);
  w.key("memory", "  ");
  if (r.memory) {
    write_memory(w, *r.memory);
  } else {
    w.out += "null";
  }
  w.key("points", "  ");
  w.open('[');
  for (const sweep_point& p : r.points) {
    w.item("    ");
    write_point(w, p);
  }
  w.close(']', "  ");
  w.key("recommendations", "  ");
  w.open('[');
  for (const sweep_choice& c : r.choices) {
    w.item("    ");
    w.open('{');
    w.integer("ep", c.ep);
    w.integer("redundant", c.recommended);
    w.integer("best", c.best);
    w.integer("knee", c.knee);
    w.text("why", c.why);
    w.text("knee_why", c.knee_why);
    w.close('}');
  }
  w.close(']', "  ");
  w.string_list("warnings", r.warnings, "  ");
  w.close('}', "");
  w.out += '\n';
  return w.out;
}

result<sweep_result> parse_sweep_json(const std::string& json, const std::string& name) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(json).get(root); err) {
    return make_error(errc::invalid_json, position{name, 0, 0}, "",
                      std::string("not a sweep JSON: ") + simdjson::error_message(err));
  }
  simdjson::dom::object top;
  if (root.get_object().get(top)) {
    return make_error(errc::wrong_type, position{name, 0, 0}, "", "a sweep JSON is an object");
  }
  const object_reader o{top, "", name};
  sweep_result r;
  std::string tool;
  std::int64_t schema = 0;
  if (status s = all_of([&] { return o.read_string("tool", tool); },
                        [&] { return o.read_int("schema", schema); });
      !s.ok()) {
    return s.err();
  }
  if (tool != "eplb-gen sweep" || schema != 1) {
    return make_error(
        errc::invalid_value, position{name, 0, 0}, "schema",
        "not the JSON of `eplb-gen sweep --json` (tool \"eplb-gen sweep\", schema 1)");
  }
  auto stats = o.child("stats");
  if (!stats) return stats.err();
  if (status s = stats->read_string_list("files", r.files); !s.ok()) return s.err();
  auto split = o.child("split");
  if (!split) return split.err();
  std::vector<std::int64_t> steps;
  auto read_steps = [&](const char* field, std::int64_t& first, std::int64_t& last) -> status {
    steps.clear();
    if (status s = split->read_int_list(field, steps); !s.ok()) return s;
    if (steps.size() != 2) return split->fail(errc::invalid_value, field, "must be [first, last]");
    first = steps[0];
    last = steps[1];
    return status::success();
  };
  if (status s =
          all_of([&] { return stats->read_string("model", r.model); },
                 [&] { return stats->read_int("num_layers", r.num_layers); },
                 [&] { return stats->read_int("num_experts", r.num_experts); },
                 [&] { return stats->read_int("records", r.records); },
                 [&] { return split->read_number("asked", r.split_asked); },
                 [&] { return split->read_int("train_records", r.train_records); },
                 [&] { return split->read_int("heldout_records", r.heldout_records); },
                 [&] { return read_steps("train_steps", r.train_first, r.train_last); },
                 [&] { return read_steps("heldout_steps", r.heldout_first, r.heldout_last); },
                 [&] { return split->read_int("plan_samples", r.plan_samples); },
                 [&] { return split->read_int("heldout_samples", r.heldout_samples); },
                 [&] { return o.read_number("tolerance", r.tolerance); },
                 [&] { return o.read_optional("expert_fraction", r.expert_fraction); });
      !s.ok()) {
    return s.err();
  }
  auto memory = o.get("memory");
  if (!memory) return memory.err();
  if (!memory->is_null()) {
    auto m = o.child("memory");
    if (!m) return m.err();
    r.memory.emplace();
    if (status s = read_memory(*m, *r.memory); !s.ok()) return s.err();
  }
  auto points = o.array("points");
  if (!points) return points.err();
  std::size_t i = 0;
  for (simdjson::dom::element e : *points) {
    simdjson::dom::object po;
    const std::string where = detail::cat("points[", i++, ']');
    if (e.get_object().get(po)) return o.fail(errc::wrong_type, where.c_str(), "must be an object");
    sweep_point p;
    if (status s = read_point(object_reader{po, detail::cat(where, '.'), name}, p); !s.ok())
      return s.err();
    r.points.push_back(std::move(p));
  }
  auto choices = o.array("recommendations");
  if (!choices) return choices.err();
  i = 0;
  for (simdjson::dom::element e : *choices) {
    simdjson::dom::object co;
    const std::string where = detail::cat("recommendations[", i++, ']');
    if (e.get_object().get(co)) return o.fail(errc::wrong_type, where.c_str(), "must be an object");
    const object_reader c{co, detail::cat(where, '.'), name};
    sweep_choice ch;
    if (status s = all_of([&] { return c.read_int("ep", ch.ep); },
                          [&] { return c.read_int("redundant", ch.recommended); },
                          [&] { return c.read_int("best", ch.best); },
                          [&] { return c.read_int("knee", ch.knee); },
                          [&] { return c.read_string("why", ch.why); },
                          [&] { return c.read_string("knee_why", ch.knee_why); });
        !s.ok()) {
      return s.err();
    }
    r.choices.push_back(std::move(ch));
  }
  if (status s = o.read_string_list("warnings", r.warnings); !s.ok()) return s.err();
  return r;
}

result<sweep_result> read_sweep_json(const std::string& path) {
  auto text = detail::read_whole_file(path);
  if (!text) return text.err();
  return parse_sweep_json(*text, path);
}

}  // namespace eplb
