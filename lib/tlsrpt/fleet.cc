// SPDX-License-Identifier: MIT
#include "tlsrpt/fleet.hh"

#include <set>
#include <stdexcept>

#include "store/pg.hh"
#include "util/log.hh"

namespace strictmx::tlsrpt::fleet {

namespace pg = store::pg;

std::string array_literal(const std::vector<std::string>& v) {
    std::string out = "{";
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ',';
        out += '"';
        for (char ch : v[i]) {
            if (ch == '"' || ch == '\\') out += '\\';
            out += ch;
        }
        out += '"';
    }
    out += '}';
    return out;
}

namespace {

std::string nums(const std::vector<std::int64_t>& v) {
    std::string out = "{";
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ',';
        out += std::to_string(v[i]);
    }
    return out + "}";
}

// Rows of one batch, as arrays: one statement per table whatever the batch's size.
const char* kAddResults = R"SQL(
INSERT INTO tlsrpt_results (day, domain, record, policy, success, failure)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
ON CONFLICT (day, domain, record, policy) DO UPDATE
  SET success = tlsrpt_results.success + EXCLUDED.success,
      failure = tlsrpt_results.failure + EXCLUDED.failure
)SQL";
const char* kAddFailures = R"SQL(
INSERT INTO tlsrpt_failures (day, domain, record, policy, detail, sessions)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
ON CONFLICT (day, domain, record, policy, detail) DO UPDATE
  SET sessions = tlsrpt_failures.sessions + EXCLUDED.sessions
)SQL";

}  // namespace

ShipResult ship(Store& local, PGconn* c, const std::string& instance, int max_batches) {
    ShipResult res;
    std::string source = local.source_id();
    if (source.empty()) return res;  // no outbox was ever made
    for (auto& ob : local.outbox(max_batches)) {
        auto fail = [&](const std::string& e) {
            res.error = e;
            if (PQstatus(c) == CONNECTION_OK) pg::exec(c, "ROLLBACK");
        };
        pg::Result bg = pg::exec(c, "BEGIN");
        if (!bg.ok()) {
            fail(bg.error());
            return res;
        }
        pg::Result mark = pg::exec(c,
                                   "INSERT INTO tlsrpt_shipped (source, batch, instance) VALUES "
                                   "($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1",
                                   {source, std::to_string(ob.batch), instance});
        if (!mark.ok()) {
            fail(mark.error());
            return res;
        }
        if (mark.rows() == 0) {
            pg::exec(c, "ROLLBACK");
            ++res.duplicates;
            log::warn("tlsrpt: outbox batch already in the fleet database, not added again",
                      {{"batch", std::to_string(ob.batch)}});
            local.outbox_done(ob.batch);
            continue;
        }
        std::vector<std::string> rd, rdom, rrec, rpol, fd, fdom, frec, fpol, fdet;
        std::vector<std::int64_t> rs, rf, fs;
        std::set<std::string> batch_days;
        std::int64_t sessions = 0;
        for (const auto& r : ob.rows) {
            batch_days.insert(r.day);
            if (r.detail.empty()) {
                rd.push_back(r.day);
                rdom.push_back(r.domain);
                rrec.push_back(r.record);
                rpol.push_back(r.policy);
                rs.push_back(r.a);
                rf.push_back(r.b);
                sessions += r.a + r.b;
            } else {
                fd.push_back(r.day);
                fdom.push_back(r.domain);
                frec.push_back(r.record);
                fpol.push_back(r.policy);
                fdet.push_back(r.detail);
                fs.push_back(r.a);
            }
        }
        if (!rd.empty()) {
            pg::Result a = pg::exec(c, kAddResults,
                                    {array_literal(rd), array_literal(rdom), array_literal(rrec),
                                     array_literal(rpol), nums(rs), nums(rf)});
            if (!a.ok()) {
                fail(a.error());
                return res;
            }
        }
        if (!fd.empty()) {
            pg::Result a = pg::exec(c, kAddFailures,
                                    {array_literal(fd), array_literal(fdom), array_literal(frec),
                                     array_literal(fpol), array_literal(fdet), nums(fs)});
            if (!a.ok()) {
                fail(a.error());
                return res;
            }
        }
        pg::Result late = pg::exec(c, "SELECT day, instance FROM tlsrpt_days WHERE day = ANY($1::text[])",
                                   {array_literal({batch_days.begin(), batch_days.end()})});
        pg::Result cm = pg::exec(c, "COMMIT");
        if (!cm.ok()) {
            // Unknown whether it committed: the batch stays and is sent again; the
            // tlsrpt_shipped row decides.
            fail(cm.error());
            return res;
        }
        local.outbox_done(ob.batch);
        ++res.batches;
        res.sessions += sessions;
        if (late.ok() && late.rows() > 0) {
            std::set<std::string> claimed;
            for (int i = 0; i < late.rows(); ++i) claimed.insert(late.text(i, 0));
            for (const auto& r : ob.rows)
                if (r.detail.empty() && claimed.contains(r.day)) res.late_sessions += r.a + r.b;
        }
    }
    if (res.late_sessions > 0)
        log::warn("tlsrpt: counts arrived for a day already reported by the fleet; they are "
                  "kept but not reported",
                  {{"sessions", std::to_string(res.late_sessions)}});
    return res;
}

std::string claim_day(PGconn* c, const std::string& day, const std::string& instance) {
    pg::Result r = pg::exec(c,
                            "INSERT INTO tlsrpt_days (day, instance) VALUES ($1, $2) "
                            "ON CONFLICT (day) DO NOTHING",
                            {day, instance});
    if (!r.ok()) throw std::runtime_error(r.error());
    pg::Result h = pg::exec(c, "SELECT instance FROM tlsrpt_days WHERE day = $1", {day});
    if (!h.ok() || h.rows() != 1) throw std::runtime_error(h.ok() ? "claim vanished" : h.error());
    return h.text(0, 0);
}

std::vector<OutboxRow> day_rows(PGconn* c, const std::string& day) {
    std::vector<OutboxRow> out;
    pg::Result r = pg::exec(c,
                            "SELECT domain, record, policy, success, failure FROM tlsrpt_results "
                            "WHERE day = $1",
                            {day});
    if (!r.ok()) throw std::runtime_error(r.error());
    for (int i = 0; i < r.rows(); ++i)
        out.push_back(OutboxRow{day, r.text(i, 0), r.text(i, 1), r.text(i, 2), "", r.num(i, 3),
                                r.num(i, 4)});
    pg::Result f = pg::exec(c,
                            "SELECT domain, record, policy, detail, sessions FROM tlsrpt_failures "
                            "WHERE day = $1",
                            {day});
    if (!f.ok()) throw std::runtime_error(f.error());
    for (int i = 0; i < f.rows(); ++i)
        out.push_back(OutboxRow{day, f.text(i, 0), f.text(i, 1), f.text(i, 2), f.text(i, 3),
                                f.num(i, 4), 0});
    return out;
}

std::vector<std::string> days(PGconn* c) {
    pg::Result r = pg::exec(c, "SELECT DISTINCT day FROM tlsrpt_results ORDER BY day");
    if (!r.ok()) throw std::runtime_error(r.error());
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.text(i, 0));
    return out;
}

}  // namespace strictmx::tlsrpt::fleet
