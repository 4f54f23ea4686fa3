// Fault tests: a fault-injecting relay (fault_relay.h) between the client and pgphase, between
// pgphase and PostgreSQL, and between pgphase and its control database, for each fault class,
// each link and each phase (pass-through, dual_write, read_switch at 50%, cleanup); see
// faults_env.h for what every case checks. One TEST_CASE per fault and link, tagged
// [<fault>] and [<fault>_<link>]; ctest runs one entry per fault class (tests/faults/CMakeLists).
#include <catch2/catch.hpp>

#include "faults_env.h"

namespace pgphase::faults {
namespace {

using Links = std::vector<std::shared_ptr<Link>>;

// Runs `make(phase)` for each phase, one Catch2 section per phase.
template <typename F>
void each_phase(LinkKind link, F make) {
  for (Phase p : kAllPhases) {
    DYNAMIC_SECTION(name(link) << "/" << name(p)) {
      CaseSpec s = make(p);
      s.phase = p;
      s.link = link;
      run_case(s, next_base());
    }
  }
}

CaseSpec latency_case(Phase) {
  CaseSpec s;
  s.during = 3;
  s.arm = [](const Links& ls) {
    for (const auto& l : ls) l->latency(25ms, 15ms);
  };
  return s;
}

CaseSpec bandwidth_case(Phase) {
  CaseSpec s;
  s.during = 2;
  s.bulk = true;
  s.arm = [](const Links& ls) {
    for (const auto& l : ls) l->bandwidth(200 * 1024);
  };
  return s;
}

CaseSpec slow_read_case(Phase) {
  CaseSpec s;
  s.during = 2;
  s.bulk = true;
  s.arm = [](const Links& ls) {
    for (const auto& l : ls) {
      l->slow_reads(Dir::kDown, 512, 2ms);
      l->slow_reads(Dir::kUp, 512, 2ms);
    }
  };
  return s;
}

// Cuts a direction 3 bytes into the next message: upstream while the INSERT goes out (the
// statement never arrives whole: the transaction fails), downstream while COMMIT's answer comes
// back (the commit happened or not: ambiguous). `reset`: RST, else FIN after the partial write.
CaseSpec cut_case(LinkKind link, Dir d, bool reset) {
  CaseSpec s;
  s.arm_at = d == Dir::kUp ? Step::kInsert : Step::kCommit;
  s.breaks = link != LinkKind::kControl;  // the control link is not in the session's path
  s.arm = [d, reset](const Links& ls) {
    for (const auto& l : ls) {
      if (reset) {
        l->reset_after(d, 3);
      } else {
        l->close_after(d, 3);
      }
    }
  };
  return s;
}

// The peer goes silent in the middle of a transaction (after its INSERT).
CaseSpec silent_case(LinkKind link) {
  CaseSpec s;
  s.arm_at = Step::kUpdate;
  s.close_links_after = true;
  if (link == LinkKind::kClient) {
    // Nothing can reach the client: its own timeout ends the call; PostgreSQL's
    // idle_in_transaction_session_timeout ends the backend, and pgphase must let go.
    s.client_timeout_ok = true;
    s.call_bound = 3000ms;
    s.breaks = true;
  } else if (link == LinkKind::kData) {
    s.must_answer_within = kBackendSilenceBound;
    s.breaks = true;
  }
  s.arm = [](const Links& ls) {
    for (const auto& l : ls) l->silent();
  };
  return s;
}

}  // namespace

// ---- the relay itself, straight in front of PostgreSQL ----------------------------------------

TEST_CASE("relay forwards, counts, and injects faults", "[relay]") {
  Env& e = env();
  FaultRelay relay("127.0.0.1", e.pg->port());
  const std::string ci = it::make_conninfo({{"host", "127.0.0.1"},
                                            {"port", std::to_string(relay.port())},
                                            {"dbname", "postgres"},
                                            {"user", "postgres"}});
  SECTION("pass-through and counters") {
    Client c = Client::open(ci);
    REQUIRE(c.ok());
    const Answer a = c.exec("SELECT repeat('x', 100000)");
    REQUIRE(a.kind == Answer::kOk);
    CHECK(a.result.value().size() == 100000);
    CHECK(relay.accepted() == 1);
    CHECK(relay.open() == 1);
    auto l = relay.link(0);
    REQUIRE(l);
    // The relay counts a chunk once send() returned, which may be after the client read it.
    CHECK(it::wait_until([&] { return l->bytes(Dir::kDown) > 100000; }, 5s));
    CHECK(l->bytes(Dir::kUp) > 0);
    c.close();
    CHECK(it::wait_until([&] { return relay.open() == 0; }, 5s));
    CHECK(l->end_reason() == "eof");
  }
  SECTION("latency delays every answer") {
    Client c = Client::open(ci);
    REQUIRE(c.ok());
    relay.link(0)->latency(100ms, 0ms);
    const Answer a = c.exec("SELECT 1");
    REQUIRE(a.kind == Answer::kOk);
    CHECK(a.ms >= 190);  // both directions
  }
  SECTION("bandwidth cap") {
    Client c = Client::open(ci);
    REQUIRE(c.ok());
    relay.link(0)->bandwidth(100 * 1024);
    const Answer a = c.exec("SELECT repeat('x', 50000)");
    REQUIRE(a.kind == Answer::kOk);
    CHECK(a.result.value().size() == 50000);
    CHECK(a.ms >= 400);
  }
  SECTION("slow reads") {
    Client c = Client::open(ci);
    REQUIRE(c.ok());
    relay.link(0)->slow_reads(Dir::kDown, 256, 5ms);
    const Answer a = c.exec("SELECT repeat('x', 20000)");
    REQUIRE(a.kind == Answer::kOk);
    CHECK(a.result.value().size() == 20000);
    CHECK(a.ms >= 300);  // >= 78 reads, 5 ms apart
  }
  SECTION("reset inside a message") {
    Client c = Client::open(ci);
    REQUIRE(c.ok());
    auto l = relay.link(0);
    l->reset_after(Dir::kDown, 3);
    const Answer a = c.exec("SELECT 1");
    CHECK(a.kind == Answer::kBroken);
    CHECK(l->bytes(Dir::kDown) >= 3);
    CHECK(it::wait_until([&] { return l->finished(); }, 5s));
    CHECK(l->end_reason() == "fault-reset");
  }
  SECTION("close after a partial write") {
    Client c = Client::open(ci);
    REQUIRE(c.ok());
    auto l = relay.link(0);
    l->close_after(Dir::kDown, 3);
    const Answer a = c.exec("SELECT 1");
    CHECK(a.kind == Answer::kBroken);
    CHECK(l->end_reason() == "fault-close");
  }
  SECTION("silent: no answer, no close") {
    Client c = Client::open(ci);
    REQUIRE(c.ok());
    auto l = relay.link(0);
    l->silent();
    const Answer a = c.exec("SELECT 1", 1000ms);
    CHECK(a.kind == Answer::kTimeout);
    CHECK(!l->finished());
    // A new connection through the same relay is not affected.
    Client n = Client::open(ci);
    REQUIRE(n.ok());
    CHECK(n.exec("SELECT 2").kind == Answer::kOk);
    CHECK(relay.open() == 2);
  }
}

// ---- the matrix ---------------------------------------------------------------------------------

// One section per link, then one per phase (each_phase).
template <class Case>
void each_link(Case run) {
  for (LinkKind link : kAllLinks) {
    DYNAMIC_SECTION(name(link)) {
      each_phase(link, run);
    }
  }
}

TEST_CASE("latency and jitter", "[latency]") {
  each_link(latency_case);
}
TEST_CASE("bandwidth cap", "[bandwidth]") {
  each_link(bandwidth_case);
}
TEST_CASE("slow reads", "[slow_read]") {
  each_link(slow_read_case);
}

TEST_CASE("reset inside a message", "[reset]") {
  for (LinkKind link : kAllLinks) {
    for (Dir d : {Dir::kUp, Dir::kDown}) {
      DYNAMIC_SECTION(name(link) << (d == Dir::kUp ? "/up" : "/down")) {
        each_phase(link, [&](Phase) { return cut_case(link, d, true); });
      }
    }
  }
}

TEST_CASE("peer closes after a partial write", "[partial_close]") {
  for (LinkKind link : kAllLinks) {
    for (Dir d : {Dir::kUp, Dir::kDown}) {
      DYNAMIC_SECTION(name(link) << (d == Dir::kUp ? "/up" : "/down")) {
        each_phase(link, [&](Phase) { return cut_case(link, d, false); });
      }
    }
  }
}

TEST_CASE("silent peer: client link", "[silent][silent_client]") {
  each_phase(LinkKind::kClient, [](Phase) { return silent_case(LinkKind::kClient); });
}
TEST_CASE("silent peer: data link", "[silent][silent_data]") {
  each_phase(LinkKind::kData, [](Phase) { return silent_case(LinkKind::kData); });
}
TEST_CASE("silent peer: control link", "[silent][silent_control]") {
  each_phase(LinkKind::kControl, [](Phase) { return silent_case(LinkKind::kControl); });
}

}  // namespace pgphase::faults
