#include <catch2/catch.hpp>

#include "eplb/types.hpp"

using namespace eplb;

TEST_CASE("topology validation suggests the smallest valid redundant count") {
  topology t{2, 3, 3, 2, 1, 1};
  status s = validate_topology(t);
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == errc::invalid_topology);
  CHECK_THAT(s.message(), Catch::Contains("use --redundant 1"));
  t.num_slots = 4;
  CHECK(validate_topology(t).ok());
  CHECK(smallest_valid_redundant(128, 48) == 16);
  CHECK(smallest_valid_redundant(256, 32) == 0);
}

TEST_CASE("identity placement is arange(P) % E and validates") {
  topology t{2, 3, 4, 2, 1, 1};
  placement p = identity_placement(t);
  CHECK(p.at(0, 3) == 0);
  CHECK(p.at(1, 2) == 2);
  CHECK(validate_placement(p, t).ok());
  auto cnt = replica_counts(p);
  CHECK(cnt == std::vector<std::int32_t>{2, 1, 1, 2, 1, 1});
  auto l2p = logical_to_physical(p);
  CHECK(l2p[0][0] == std::vector<std::int32_t>{0, 3});
}

TEST_CASE("placement validation names the missing expert and the bad slot") {
  topology t{1, 3, 4, 2, 1, 1};
  placement p = identity_placement(t);
  p.row(0)[2] = 0;  // expert 2 vanishes
  status s = validate_placement(p, t);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("logical expert 2 has no slot"));
  p.row(0)[1] = 7;
  s = validate_placement(p, t);
  CHECK_THAT(s.message(), Catch::Contains("layer 0 slot 1"));
}
