#include "stats/json_check.hpp"

#include <utility>

namespace eplb::detail {

namespace ondemand = simdjson::ondemand;

namespace {

// Deeper documents are refused by simdjson itself (1024); stop a little earlier to keep the
// recursion's stack use small whatever the input.
constexpr int max_depth = 512;

simdjson::error_code check_array(ondemand::array array, int depth) noexcept {
  for (auto element : array) {
    ondemand::value v;
    if (auto e = element.get(v)) return e;
    if (auto e = check_value(v, depth + 1)) return e;
  }
  return simdjson::SUCCESS;
}

simdjson::error_code check_object(ondemand::object object, int depth) noexcept {
  for (auto field : object) {
    ondemand::field f;
    if (auto e = std::move(field).get(f)) return e;
    std::string_view key;
    if (auto e = f.unescaped_key().get(key)) return e;
    if (auto e = check_value(f.value(), depth + 1)) return e;
  }
  return simdjson::SUCCESS;
}

// The on-demand walk of a whole document, used to accept integers beyond 64 bits that simdjson's
// DOM parser rejects but JSON allows.
simdjson::error_code check_document(ondemand::document& doc) noexcept {
  ondemand::json_type type;
  if (auto e = doc.type().get(type)) return e;
  simdjson::error_code e = simdjson::SUCCESS;
  switch (type) {
    case ondemand::json_type::array: {
      ondemand::array a;
      e = doc.get_array().get(a);
      if (!e) e = check_array(a, 1);
      break;
    }
    case ondemand::json_type::object: {
      ondemand::object o;
      e = doc.get_object().get(o);
      if (!e) e = check_object(o, 1);
      break;
    }
    case ondemand::json_type::number: {
      double d;
      e = doc.get_double().get(d);
      break;
    }
    case ondemand::json_type::string: {
      std::string_view s;
      e = doc.get_string().get(s);
      break;
    }
    case ondemand::json_type::boolean: {
      bool b;
      e = doc.get_bool().get(b);
      break;
    }
    case ondemand::json_type::null: {
      bool n = false;
      e = doc.is_null().get(n);
      if (!e && !n) e = simdjson::N_ATOM_ERROR;
      break;
    }
  }
  if (e) return e;
  const char* where = nullptr;
  // current_location() reports OUT_OF_BOUNDS exactly when every token was consumed.
  if (doc.current_location().get(where) != simdjson::OUT_OF_BOUNDS) {
    return simdjson::TRAILING_CONTENT;
  }
  return simdjson::SUCCESS;
}

}  // namespace

simdjson::error_code check_value(ondemand::value value, int depth) noexcept {
  if (depth > max_depth) return simdjson::DEPTH_ERROR;
  ondemand::json_type type;
  if (auto e = value.type().get(type)) return e;
  switch (type) {
    case ondemand::json_type::array: {
      ondemand::array a;
      if (auto e = value.get_array().get(a)) return e;
      return check_array(a, depth);
    }
    case ondemand::json_type::object: {
      ondemand::object o;
      if (auto e = value.get_object().get(o)) return e;
      return check_object(o, depth);
    }
    case ondemand::json_type::number: {
      // get_double accepts every valid JSON number, including integers beyond 64 bits.
      double d;
      return value.get_double().get(d);
    }
    case ondemand::json_type::string: {
      std::string_view s;
      return value.get_string().get(s);
    }
    case ondemand::json_type::boolean: {
      bool b;
      return value.get_bool().get(b);
    }
    case ondemand::json_type::null: {
      bool n = false;
      if (auto e = value.is_null().get(n)) return e;
      return n ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::TAPE_ERROR;
}

simdjson::error_code validate_json_text(std::string_view text) {
  // The DOM parser checks everything, including trailing content; only its refusal of integers
  // beyond 64 bits needs a second opinion.
  simdjson::dom::parser dom;
  simdjson::dom::element root;
  auto e = dom.parse(text.data(), text.size(), true).get(root);
  if (e != simdjson::NUMBER_ERROR) return e;
  simdjson::padded_string copy(text);
  ondemand::parser parser;
  ondemand::document doc;
  if (auto e2 = parser.iterate(copy).get(doc)) return e2;
  return check_document(doc) ? e : simdjson::SUCCESS;
}

}  // namespace eplb::detail
