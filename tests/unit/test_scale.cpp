// Scale: the streaming reader with parser threads, chunking, compressed input, the fast scanner
// against simdjson, progress reports, and the SIMD integer-matrix scanner against the scalar one.

#include <zlib.h>
#include <zstd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/stats.hpp"
#include "stats/int_matrix.hpp"
#include "test_util.hpp"

namespace {

using eplb::errc;

// A synthetic trace with its exact sums.
struct trace {
  std::string text;
  eplb::load_matrix sums;
  std::uint64_t records = 0;
  std::size_t longest_line = 0;
};

struct trace_options {
  int layers = 3, experts = 6, redundant = 2, records = 40;
  bool crlf = false;
  bool meta = true;
  int remap_every = 7;       // a new p2l_map every N records
  bool big_numbers = false;  // some loads beyond 8 digits (the scanner's slow path)
  bool compact = false;      // "1,2" instead of "1, 2"
  std::uint64_t seed = 1;
};

trace make_trace(const trace_options& o) {
  std::mt19937_64 rng(o.seed);
  const int slots = o.experts + o.redundant;
  trace t;
  t.sums = eplb::load_matrix::Zero(o.layers, o.experts);
  const std::string eol = o.crlf ? "\r\n" : "\n";
  const std::string sep = o.compact ? "," : ", ";
  if (o.meta) {
    t.text += std::string(R"({"record_type": "eplb_load_meta", "version": 1, "model": "t/moe-ü", )"
                          R"("num_ranks": 2, "num_groups": 1, "num_nodes": 1, "num_layers": )") +
              std::to_string(o.layers) + R"(, "num_redundant_experts": )" +
              std::to_string(o.redundant) + "}" + eol;
  }
  std::vector<int> p2l(static_cast<std::size_t>(o.layers * slots));
  auto remap = [&]() {
    for (int l = 0; l < o.layers; ++l) {
      for (int p = 0; p < slots; ++p) {
        p2l[static_cast<std::size_t>(l * slots + p)] =
            p < o.experts ? (p + l + static_cast<int>(rng() % 3)) % o.experts
                          : static_cast<int>(rng() % o.experts);
      }
      // Every expert once: rotate the first E slots.
      for (int p = 0; p < o.experts; ++p)
        p2l[static_cast<std::size_t>(l * slots + p)] = (p + l) % o.experts;
    }
  };
  remap();
  for (int i = 0; i < o.records; ++i) {
    if (o.remap_every > 0 && i > 0 && i % o.remap_every == 0) {
      std::shuffle(p2l.begin(), p2l.end(), rng);
      // Keep every expert in every layer: rebuild each layer's first E slots.
      for (int l = 0; l < o.layers; ++l) {
        for (int p = 0; p < o.experts; ++p) {
          p2l[static_cast<std::size_t>(l * slots + p)] = (p + i) % o.experts;
        }
        for (int p = o.experts; p < slots; ++p) {
          p2l[static_cast<std::size_t>(l * slots + p)] = static_cast<int>(rng() % o.experts);
        }
      }
    }
    std::string load = "[", map = "[", tokens = "[";
    for (int l = 0; l < o.layers; ++l) {
      load += l ? sep + "[" : "[";
      map += l ? sep + "[" : "[";
      tokens += l ? sep + "[" : "[";
      std::int64_t rank_total = 0;
      for (int p = 0; p < slots; ++p) {
        std::int64_t v = static_cast<std::int64_t>(rng() % 5000);
        if (o.big_numbers && rng() % 7 == 0)
          v = 123456789012LL + static_cast<std::int64_t>(rng() % 1000);
        if (rng() % 11 == 0) v = 0;
        const int e = p2l[static_cast<std::size_t>(l * slots + p)];
        t.sums(l, e) += v;
        rank_total += v;
        load += (p ? sep : "") + std::to_string(v);
        map += (p ? sep : "") + std::to_string(e);
      }
      load += "]";
      map += "]";
      tokens += std::to_string(rank_total) + sep + "0]";
    }
    load += "]";
    map += "]";
    tokens += "]";
    std::string line = std::string(R"({"record_type": "eplb_load_stats", "version": 1, )"
                                   R"("model": "t/moe-ü", "step": )") +
                       std::to_string(2250 + i) + R"(, "next_rearrange": -3, "num_ranks": 2, )" +
                       R"("num_layers": )" + std::to_string(o.layers) + R"(, "tokens": )" + tokens +
                       R"(, "expert_load": )" + load + R"(, "p2l_map": )" + map + "}";
    t.longest_line = std::max(t.longest_line, line.size());
    t.text += line + eol;
    ++t.records;
  }
  return t;
}

using outcome = eplb::test::read_outcome;

outcome read_text(const std::string& text, eplb::stats_read_options options,
                  const std::string& name = "s.jsonl") {
  return eplb::test::aggregate_stats_text(text, name, options);
}

outcome read_files(const std::vector<std::string>& files, eplb::stats_read_options options) {
  return eplb::test::aggregate_stats_files(files, options);
}

eplb::stats_read_options opts(std::size_t chunk, int threads, bool fast = true) {
  eplb::stats_read_options o;
  o.read_chunk_bytes = chunk;
  o.threads = threads;
  o.fast_path = fast;
  return o;
}

using eplb::test::temp_dir;

std::string gzip(const std::string& text, int level = 6) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&zs, static_cast<uLong>(text.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string zstd(const std::string& text, int level = 3) {
  std::string out(ZSTD_compressBound(text.size()), '\0');
  const std::size_t n = ZSTD_compress(out.data(), out.size(), text.data(), text.size(), level);
  REQUIRE_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("scale: chunk boundaries inside records and records longer than the chunk", "[scale]") {
  trace_options o;
  o.records = 30;
  const trace t = make_trace(o);
  for (std::size_t chunk :
       {std::size_t{1}, std::size_t{13}, std::size_t{100}, t.longest_line - 1, t.longest_line,
        t.longest_line + 1, std::size_t{4096}, std::size_t{1} << 20}) {
    for (int threads : {1, 2, 3}) {
      INFO("chunk " << chunk << " threads " << threads);
      const outcome r = read_text(t.text, opts(chunk, threads));
      REQUIRE(r.st.ok());
      CHECK(r.sums == t.sums);
      CHECK(r.summary.records_selected == t.records);
      CHECK(r.summary.bytes == t.text.size());
      CHECK(r.summary.meta.has_value());
    }
  }
}

TEST_CASE("scale: CRLF, compact separators and long numbers read the same", "[scale]") {
  for (int variant = 0; variant < 4; ++variant) {
    trace_options o;
    o.seed = 10 + static_cast<std::uint64_t>(variant);
    o.crlf = variant & 1;
    o.compact = variant & 2;
    o.big_numbers = variant == 3;
    const trace t = make_trace(o);
    CHECK((t.text.find("\r\n") != std::string::npos) == o.crlf);
    for (int threads : {1, 2}) {
      for (bool fast : {true, false}) {
        INFO("variant " << variant << " threads " << threads << " fast " << fast);
        const outcome r = read_text(t.text, opts(257, threads, fast));
        REQUIRE(r.st.ok());
        CHECK(r.sums == t.sums);
      }
    }
  }
}

TEST_CASE("scale: gzip, zstd and plain files give identical sums", "[scale]") {
  trace_options o;
  o.records = 60;
  o.layers = 4;
  o.experts = 16;
  const trace t = make_trace(o);
  temp_dir dir;
  const std::string plain = dir.write("t.jsonl", t.text);
  const std::string gz = dir.write("t.jsonl.gz", gzip(t.text));
  const std::string zst = dir.write("t.jsonl.zst", zstd(t.text));
  // Told by the magic bytes, not by the name.
  const std::string gz_unnamed = dir.write("t-gz.jsonl", gzip(t.text, 1));
  const std::string zst_unnamed = dir.write("t-zst.data", zstd(t.text, 19));
  // Two gzip members read as one text (cat a.gz b.gz).
  const std::size_t half = t.text.find('\n', t.text.size() / 2) + 1;
  const std::string members =
      dir.write("members.jsonl.gz", gzip(t.text.substr(0, half)) + gzip(t.text.substr(half)));
  for (const std::string& path : {plain, gz, zst, gz_unnamed, zst_unnamed, members}) {
    // Reads of one byte too: a decoder may then return having read a header and written nothing.
    for (std::size_t chunk : {std::size_t{1}, std::size_t{997}, std::size_t{1} << 20}) {
      for (int threads : {1, 2}) {
        INFO(path << " chunk " << chunk << " threads " << threads);
        const outcome r = read_files({path}, opts(chunk, threads));
        REQUIRE(r.st.ok());
        CHECK(r.sums == t.sums);
        CHECK(r.summary.bytes == t.text.size());  // bytes of text, after decompression
        CHECK(r.summary.records_selected == t.records);
      }
    }
  }
  // Plain and compressed files mix in one read.
  const outcome mixed = read_files({plain, zst}, opts(4096, 2));
  REQUIRE(mixed.st.ok());
  CHECK(mixed.sums == 2 * t.sums);
}

TEST_CASE("scale: broken compressed files name the file", "[scale]") {
  trace_options o;
  o.records = 20;
  const trace t = make_trace(o);
  temp_dir dir;
  const std::string gz = gzip(t.text);
  const std::string zs = zstd(t.text);
  const std::string cut_gz = dir.write("cut.jsonl.gz", gz.substr(0, gz.size() / 2));
  const std::string cut_zst = dir.write("cut.jsonl.zst", zs.substr(0, zs.size() / 2));
  // A damaged header (compression method 7); damage inside the deflate data may instead
  // decompress to text that then fails as JSON, before the CRC at the end is checked.
  std::string bad = gz;
  bad[2] = 7;
  const std::string corrupt_gz = dir.write("corrupt.jsonl.gz", bad);
  const std::string not_gz = dir.write("plain.jsonl.gz", t.text);
  for (int threads : {1, 2}) {
    auto r = read_files({cut_gz}, opts(1000, threads));
    CHECK(r.st.code() == errc::io_error);
    CHECK(contains(r.st.message(), "cut.jsonl.gz: gzip: the compressed stream is truncated"));
    r = read_files({cut_zst}, opts(1000, threads));
    CHECK(r.st.code() == errc::io_error);
    CHECK(contains(r.st.message(), "cut.jsonl.zst: zstd: the compressed stream is truncated"));
    r = read_files({corrupt_gz}, opts(1000, threads));
    CHECK(r.st.code() == errc::io_error);
    CHECK(contains(r.st.message(), "corrupt.jsonl.gz: gzip: corrupt data"));
    r = read_files({not_gz}, opts(1000, threads));
    CHECK(r.st.code() == errc::io_error);
    CHECK(contains(r.st.message(), "the name says gzip"));
  }
}

TEST_CASE("scale: threads change nothing, errors included", "[scale]") {
  trace_options o;
  o.records = 24;
  const trace t = make_trace(o);
  std::mt19937 rng(99);
  const char inserts[] = {',', ']', '[', '{', '}', '"',  '\n',
                          ' ', '-', '1', '.', 'e', '\0', '\xff'};
  int failures = 0;
  for (int round = 0; round < 120; ++round) {
    std::string text = t.text;
    // Mutate the second half mostly, so that the error lies in a later region than the first.
    const std::size_t at = text.size() / 3 + rng() % (text.size() * 2 / 3);
    switch (rng() % 4) {
      case 0:
        text.erase(at, 1);
        break;
      case 1:
        text.insert(at, 1, inserts[rng() % sizeof(inserts)]);
        break;
      case 2:
        text[at] = inserts[rng() % sizeof(inserts)];
        break;
      default:
        text.resize(at);  // a cut file
        break;
    }
    const outcome reference = read_text(text, opts(1 << 20, 1, false));
    if (!reference.st.ok()) ++failures;
    for (const auto& [chunk, threads, fast] :
         {std::tuple{std::size_t{64}, 1, true}, std::tuple{std::size_t{64}, 3, true},
          std::tuple{std::size_t{700}, 2, true}, std::tuple{std::size_t{700}, 2, false},
          std::tuple{std::size_t{1} << 20, 1, true}}) {
      const outcome r = read_text(text, opts(chunk, threads, fast));
      INFO("round " << round << " chunk " << chunk << " threads " << threads << " fast " << fast
                    << ": " << reference.st.message());
      CHECK(r.st.code() == reference.st.code());
      CHECK(r.st.message() == reference.st.message());
      CHECK(r.summary.records_seen == reference.summary.records_seen);
      CHECK(r.summary.records_selected == reference.summary.records_selected);
      if (reference.st.ok() && r.st.ok()) CHECK(r.sums == reference.sums);
    }
  }
  CHECK(failures > 40);
}

TEST_CASE("scale: errors from the read stage come after the records before them", "[scale]") {
  trace_options o;
  o.records = 12;
  const trace t = make_trace(o);
  eplb::stats_read_options options = opts(128, 2);
  options.batch_bytes = t.longest_line + 2;
  // A line too long for the batch, far into the file: the records before it still arrive.
  const std::string text = t.text + std::string(t.longest_line * 2, ' ') + "x\n" + t.text;
  struct counting_sink : eplb::stats_sink {
    int records = 0;
    eplb::status on_record(const eplb::stats_record&) override {
      ++records;
      return eplb::status::success();
    }
  };
  for (int threads : {1, 2}) {
    options.threads = threads;
    counting_sink sink;
    const auto st = eplb::read_vllm_stats_text(text, "long.jsonl", options, sink, nullptr);
    CHECK(st.code() == errc::limit_exceeded);
    CHECK(contains(st.message(), std::string("long.jsonl:") + std::to_string(t.records + 2) + ":"));
    CHECK(sink.records == static_cast<int>(t.records));
  }
  options.threads = -1;
  counting_sink sink;
  CHECK(eplb::read_vllm_stats_text(t.text, "t", options, sink, nullptr).code() ==
        errc::invalid_argument);
}

TEST_CASE("scale: progress reports are monotone and end with done", "[scale]") {
  trace_options o;
  o.records = 50;
  const trace t = make_trace(o);
  temp_dir dir;
  const std::string path = dir.write("p.jsonl.zst", zstd(t.text));
  const auto size = std::filesystem::file_size(path);
  for (int threads : {1, 2}) {
    std::vector<eplb::stats_read_progress> calls;
    eplb::stats_read_options options = opts(512, threads);
    options.progress = [&](const eplb::stats_read_progress& p) { calls.push_back(p); };
    const outcome r = read_files({path}, options);
    REQUIRE(r.st.ok());
    REQUIRE_FALSE(calls.empty());
    CHECK(calls.back().done);
    CHECK(calls.back().bytes_total == size);
    CHECK(calls.back().bytes_done == size);
    CHECK(calls.back().text_bytes == t.text.size());
    CHECK(calls.back().records == t.records);
    for (std::size_t i = 1; i < calls.size(); ++i) {
      CHECK(calls[i].bytes_done >= calls[i - 1].bytes_done);
      CHECK(calls[i].seconds >= calls[i - 1].seconds);
      CHECK_FALSE(calls[i - 1].done);
    }
  }
  // A failed read ends with done too.
  int done = 0;
  eplb::stats_read_options options;
  options.progress = [&](const eplb::stats_read_progress& p) { done += p.done ? 1 : 0; };
  CHECK_FALSE(read_text("{oops\n", options).st.ok());
  CHECK(done == 1);
}

TEST_CASE("scale: the sink hears the input size and thread count first", "[scale]") {
  struct begin_sink : eplb::stats_sink {
    std::vector<std::string> events;
    eplb::stats_input input;
    eplb::status on_begin(const eplb::stats_input& in) override {
      events.push_back("begin");
      input = in;
      return eplb::status::success();
    }
    eplb::status on_record(const eplb::stats_record&) override {
      if (events.empty() || events.back() != "record") events.push_back("record");
      return eplb::status::success();
    }
  };
  const trace t = make_trace(trace_options{});
  begin_sink sink;
  REQUIRE(eplb::read_vllm_stats_text(t.text, "b", opts(128, 2), sink, nullptr).ok());
  CHECK(sink.events == std::vector<std::string>{"begin", "record"});
  CHECK(sink.input.bytes == t.text.size());
  CHECK(sink.input.threads == 2);
  // Small inputs are parsed on the calling thread.
  begin_sink small;
  REQUIRE(eplb::read_vllm_stats_text(t.text, "b", opts(1 << 20, 2), small, nullptr).ok());
  CHECK(small.input.threads == 1);
}

// The SIMD scanner must accept exactly what the scalar scanner accepts, with the same values.
TEST_CASE("scale: SIMD and scalar matrix scanners agree", "[scale]") {
  std::mt19937_64 rng(5);
  const char* seps[] = {", ", ",", " , ", ",  ", ",\t", " ,"};
  const char noise[] = {',', ']', '[', ' ', '-', '0', '9', '.', 'e', '\n', '"', 'x'};
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 3000; ++round) {
    const int rows = 1 + static_cast<int>(rng() % 4);
    const int cols = 1 + static_cast<int>(rng() % 40);
    const char* sep = seps[rng() % (round % 3 == 0 ? 6 : 2)];
    std::string text = "[";
    for (int r = 0; r < rows; ++r) {
      text += r ? ", [" : "[";
      const int n = cols - (rng() % 17 == 0 ? 1 : 0);  // sometimes ragged
      for (int c = 0; c < n; ++c) {
        if (c) text += sep;
        const auto kind = rng() % 20;
        if (kind == 0) {
          text += std::to_string(rng() % 100000000000ULL);  // up to 11 digits
        } else if (kind == 1) {
          text += '-';
          text += std::to_string(rng() % 1000);
        } else {
          text += std::to_string(rng() % (kind < 10 ? 10 : 100000));
        }
      }
      text += "]";
    }
    text += "]";
    if (round % 4 == 0) {
      // A random byte changed somewhere.
      text[rng() % text.size()] = noise[rng() % sizeof(noise)];
    }
    text += "\n";
    text.append(80, '\0');
    std::vector<std::int64_t> a, b;
    std::size_t ra = 0, ca = 0, rb = 0, cb = 0;
    auto any = [](std::int64_t) { return true; };
    const char* end_scalar =
        eplb::detail::scan_int_matrix_scalar<std::int64_t, true>(text.data(), a, 3, ra, ca, any);
    const char* end_any =
        eplb::detail::scan_int_matrix<std::int64_t, true>(text.data(), b, 3, rb, cb, any);
    INFO("text: " << text.c_str());
    CHECK(end_scalar == end_any);
    if (end_scalar != nullptr && end_any != nullptr) {
      ++accepted;
      REQUIRE(ra == rb);
      REQUIRE(ca == cb);
      for (std::size_t i = 0; i < ra * ca; ++i) CHECK(a[3 + i] == b[3 + i]);
    } else {
      ++rejected;
    }
#if defined(__SSE2__)
    // Whatever the SIMD path accepts, the scalar path accepts identically.
    std::vector<std::int64_t> c;
    std::size_t rc = 0, cc = 0;
    if (const char* end_simd = eplb::detail::scan_int_matrix_simd<std::int64_t, true>(
            text.data(), c, 0, rc, cc, any)) {
      CHECK(end_simd == end_scalar);
      CHECK(rc == ra);
      CHECK(cc == ca);
    }
#endif
  }
  CHECK(accepted > 1000);
  CHECK(rejected > 300);
}

TEST_CASE("live stats: an incomplete last line is refused, or ignored with allow_partial_tail",
          "[scale][live]") {
  trace_options o;
  o.records = 40;
  const trace t = make_trace(o);
  // The trace without its last record: what a copy made just before that record was written
  // holds; the last record is line 41 (after the meta line).
  const std::size_t last_start = t.text.rfind('\n', t.text.size() - 2) + 1;
  const std::size_t last_len = t.text.size() - last_start - 1;  // without its newline
  const outcome earlier = read_text(t.text.substr(0, last_start), opts(1 << 20, 1));
  REQUIRE(earlier.st.ok());
  REQUIRE(earlier.summary.records_selected == t.records - 1);
  temp_dir dir;
  for (std::size_t cut : {std::size_t{1}, std::size_t{17}, last_len / 2, last_len - 1}) {
    const std::string text = t.text.substr(0, last_start + cut);
    for (const std::string& path : {dir.write("c.jsonl", text), dir.write("c.jsonl.gz", gzip(text)),
                                    dir.write("c.jsonl.zst", zstd(text))}) {
      for (std::size_t chunk : {std::size_t{1}, std::size_t{97}, std::size_t{1} << 20}) {
        for (int threads : {1, 2, 4}) {
          INFO(path << " cut " << cut << " chunk " << chunk << " threads " << threads);
          eplb::stats_read_options options = opts(chunk, threads);
          const outcome refused = read_files({path}, options);
          INFO("refused: " << refused.st.message());
          CHECK(refused.st.code() == errc::invalid_json);
          CHECK(contains(refused.st.message(), path + ":41: truncated record"));
          CHECK(contains(refused.st.message(), "--allow-partial-tail"));
          options.allow_partial_tail = true;
          const outcome r = read_files({path}, options);
          INFO("allowed: " << r.st.message());
          for (const std::string& w : r.summary.warnings) INFO("warning: " << w);
          REQUIRE(r.st.ok());
          CHECK(r.sums == earlier.sums);
          CHECK(r.summary.records_selected == t.records - 1);
          CHECK(r.summary.partial_tail_bytes == cut);
          REQUIRE(r.summary.warnings.size() == 1);
          CHECK(r.summary.warnings[0] == path + ":41: ignored the incomplete last line (" +
                                             std::to_string(cut) +
                                             " bytes, no newline; is the file still being "
                                             "written?)");
        }
      }
    }
  }
}

TEST_CASE("live stats: allow_partial_tail forgives the last line only", "[scale][live]") {
  trace_options o;
  o.records = 12;
  const trace t = make_trace(o);
  const std::size_t last_start = t.text.rfind('\n', t.text.size() - 2) + 1;
  eplb::stats_read_options options = opts(1 << 20, 1);
  options.allow_partial_tail = true;
  // A complete last record without its newline is used, with no warning.
  const outcome whole = read_text(t.text.substr(0, t.text.size() - 1), options);
  REQUIRE(whole.st.ok());
  CHECK(whole.sums == t.sums);
  CHECK(whole.summary.warnings.empty());
  CHECK(whole.summary.partial_tail_bytes == 0);
  // A cut line that does end in a newline is damage, not a write in progress.
  const std::string cut = t.text.substr(0, last_start + 30);
  const outcome with_newline = read_text(cut + "\n", options);
  CHECK(with_newline.st.code() == errc::invalid_json);
  CHECK(contains(with_newline.st.message(), "s.jsonl:13: truncated record"));
  CHECK_FALSE(contains(with_newline.st.message(), "--allow-partial-tail"));
  // A malformed line before the last is still an error, partial tail or not.
  std::string damaged = cut;
  const std::size_t line5 = [&] {
    std::size_t at = 0;
    for (int i = 0; i < 4; ++i) at = damaged.find('\n', at) + 1;
    return at;
  }();
  damaged.erase(damaged.find('}', line5), 1);  // line 5 loses a closing brace
  for (int threads : {1, 2}) {
    options.threads = threads;
    options.read_chunk_bytes = 97;
    const outcome r = read_text(damaged, options);
    CHECK(r.st.code() == errc::invalid_json);
    CHECK(contains(r.st.message(), "s.jsonl:5: invalid JSON"));
  }
  // A line that does not start a record is garbage, also at the end.
  const outcome garbage = read_text(t.text + "xyz", options);
  CHECK(garbage.st.code() == errc::invalid_json);
  CHECK(contains(garbage.st.message(), "s.jsonl:14: invalid JSON"));
}

TEST_CASE("live stats: a compressed stream cut short ends the text there", "[scale][live]") {
  trace_options o;
  o.records = 60;
  const trace t = make_trace(o);
  temp_dir dir;
  const std::string gz = gzip(t.text);
  // zstd decodes whole blocks: a writer that flushes as it goes leaves many small frames (or
  // blocks), here five, cut anywhere in a line.
  std::string zs;
  for (std::size_t at = 0, n = t.text.size() / 5 + 1; at < t.text.size(); at += n) {
    zs += zstd(t.text.substr(at, n));
  }
  for (const std::string& path : {dir.write("cut.jsonl.gz", gz.substr(0, gz.size() * 2 / 3)),
                                  dir.write("cut.jsonl.zst", zs.substr(0, zs.size() * 2 / 3))}) {
    for (int threads : {1, 2}) {
      INFO(path << " threads " << threads);
      eplb::stats_read_options options = opts(997, threads);
      CHECK(read_files({path}, options).st.code() == errc::io_error);
      options.allow_partial_tail = true;
      const outcome r = read_files({path}, options);
      REQUIRE(r.st.ok());
      // The records decompressed before the cut, and nothing of the line the cut fell in.
      const std::size_t got = r.summary.bytes;
      REQUIRE(got > 0);
      REQUIRE(got < t.text.size());
      const std::size_t complete = t.text.rfind('\n', got - 1) + 1;
      const outcome expected = read_text(t.text.substr(0, complete), opts(1 << 20, 1));
      REQUIRE(expected.st.ok());
      CHECK(r.sums == expected.sums);
      CHECK(r.summary.partial_tail_bytes == got - complete);
      REQUIRE_FALSE(r.summary.warnings.empty());
      CHECK(r.summary.warnings.back() ==
            path +
                ": the compressed stream ends early (is the file still being written?); read the "
                "text before the cut");
    }
  }
}
