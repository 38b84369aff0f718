// SPDX-License-Identifier: MIT
#include "tlsrpt/collector.hh"

#include "store/pg.hh"
#include "tlsrpt/fleet.hh"

#include <grp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "tlsrpt/reporter.hh"
#include "util/log.hh"

namespace strictmx::tlsrpt {
namespace {

constexpr std::size_t kMaxQueue = 100'000;
constexpr std::size_t kMaxPendingRows = 200'000;  // aggregated rows kept while writes fail
constexpr std::size_t kMaxRawBytes = 64u << 20;    // received, not yet parsed

}  // namespace

Collector::Collector(const config::Config& c, const Clock& clock)
    : clock_(clock),
      path_(c.tlsrpt_socket),
      db_path_(db_path(c)),
      commit_interval_ms_(c.tlsrpt_commit_interval_ms),
      fleet_(config::fleet(c)),
      dsn_(c.store_dsn),
      instance_(config::instance_name(c)),
      ship_interval_ms_(c.store_tlsrpt_ship_interval_ms),
      outbox_max_(c.store_tlsrpt_outbox_max_rows) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path_.empty() || path_.size() >= sizeof sun.sun_path)
        throw std::runtime_error("tlsrpt.socket: bad path " + path_);
    std::memcpy(sun.sun_path, path_.data(), path_.size());
    // A socket left from an earlier run is replaced; anything else at the path is not ours.
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            throw std::runtime_error("tlsrpt.socket: " + path_ + " exists and is not a socket");
        ::unlink(path_.c_str());
    }
    fd_ = Fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd_.valid()) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0)
        throw std::runtime_error("tlsrpt.socket: bind " + path_ + ": " + std::strerror(errno));
    mode_t mode = static_cast<mode_t>(std::stoul(c.tlsrpt_socket_mode, nullptr, 8));
    if (::chmod(path_.c_str(), mode) != 0)
        throw std::runtime_error("tlsrpt.socket: chmod " + path_ + ": " + std::strerror(errno));
    if (!c.tlsrpt_socket_group.empty()) {
        group* gr = ::getgrnam(c.tlsrpt_socket_group.c_str());
        if (!gr) throw std::runtime_error("tlsrpt.socket_group: no such group " +
                                          c.tlsrpt_socket_group);
        if (::chown(path_.c_str(), static_cast<uid_t>(-1), gr->gr_gid) != 0)
            throw std::runtime_error("tlsrpt.socket_group: chown " + path_ + ": " +
                                     std::strerror(errno));
    }
    // A burst waits in the kernel while a batch is written. As root the configured size is
    // forced past net.core.rmem_max; otherwise the kernel caps it, and the log says so.
    int want = c.tlsrpt_receive_buffer;
    if (::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    int got = 0;
    socklen_t len = sizeof got;
    ::getsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &got, &len);
    if (got / 2 < want)
        log::warn("tlsrpt: receive buffer smaller than configured (raise net.core.rmem_max)",
                  {{"configured", std::to_string(want)}, {"granted", std::to_string(got / 2)}});
    int one = 1;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    // What bounds a burst is the kernel's queue per unix datagram socket; libtlsrpt drops a
    // datagram when it is full.
    if (std::FILE* f = std::fopen("/proc/sys/net/unix/max_dgram_qlen", "r")) {
        int qlen = 0;
        if (std::fscanf(f, "%d", &qlen) == 1 && qlen < 128)
            log::warn("tlsrpt: net.unix.max_dgram_qlen is low: bursts of TLS outcomes are lost at "
                      "the sender (set 512, /usr/lib/sysctl.d/50-strictmx.conf)",
                      {{"max_dgram_qlen", std::to_string(qlen)}});
        std::fclose(f);
    }
}

Collector::~Collector() {
    stop();
    if (fd_.valid()) ::unlink(path_.c_str());
}

void Collector::start() {
    store_ = Store::open(db_path_);
    if (fleet_) {
        store_->enable_outbox(outbox_max_);
        std::lock_guard<std::mutex> lk(smu_);
        fleet_stats_.enabled = true;
    }
    writer_thread_ = std::thread([this] { writer(); });
    if (fleet_) shipper_thread_ = std::thread([this] { shipper(); });
    thread_ = std::thread([this] { loop(); });
    reader_thread_ = std::thread([this] { reader(); });
    log::info("tlsrpt: collecting", {{"socket", path_}, {"db", db_path_}});
}

void Collector::stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    reader_thread_.join();
    rcv_.notify_one();
    thread_.join();
    {
        std::lock_guard<std::mutex> lk(wmu_);
        writer_stop_ = true;
    }
    wcv_.notify_one();
    writer_thread_.join();
    if (shipper_thread_.joinable()) {
        {
            std::lock_guard<std::mutex> lk(smu_);
            shipper_stop_ = true;
        }
        scv_.notify_one();
        shipper_thread_.join();
    }
}

Collector::FleetStats Collector::fleet_stats() const {
    std::lock_guard<std::mutex> lk(smu_);
    return fleet_stats_;
}

void Collector::shipper() {
    // Its own handle on the local store (SQLite allows several; WAL lets it read while the
    // writer writes) and its own database connection, reopened when lost.
    std::unique_ptr<Store> local;
    store::pg::ConnPtr conn;
    UnixTime last_log = 0;
    bool last_ok = true;
    for (bool stopping = false; !stopping;) {
        {
            std::unique_lock<std::mutex> lk(smu_);
            scv_.wait_for(lk, std::chrono::milliseconds(ship_interval_ms_),
                          [this] { return shipper_stop_; });
            stopping = shipper_stop_;  // one last round: what the writer committed last
        }
        std::string err;
        try {
            if (!local) local = Store::open(db_path_);
            if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
                store::pg::Options o;
                o.dsn = dsn_;
                o.application = "strictmx " + instance_ + " tlsrpt";
                conn = store::pg::connect(o, err);
            }
            if (conn) {
                auto r = fleet::ship(*local, conn.get(), instance_);
                err = r.error;
                std::lock_guard<std::mutex> lk(smu_);
                fleet_stats_.shipped_batches += r.batches;
                fleet_stats_.shipped_sessions += r.sessions;
                fleet_stats_.duplicates += r.duplicates;
                fleet_stats_.late_sessions += r.late_sessions;
            }
            std::int64_t rows = local->outbox_rows();
            std::lock_guard<std::mutex> lk(smu_);
            fleet_stats_.outbox_rows = rows;
            fleet_stats_.last_error = err;
        } catch (const std::exception& e) {
            err = e.what();
        }
        UnixTime now = clock_.now();
        if (!err.empty() && (last_ok || now - last_log >= 60)) {
            log::error("tlsrpt: fleet database unavailable, counts kept in the local outbox",
                       {{"dsn", store::pg::redact(dsn_)}, {"error", err}});
            last_log = now;
        } else if (err.empty() && !last_ok) {
            log::info("tlsrpt: fleet database reachable again, outbox shipped");
        }
        last_ok = err.empty();
    }
}

void Collector::writer() {
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 15);
    for (;;) {
        Batch b;
        bool stopping;
        {
            std::unique_lock<std::mutex> lk(wmu_);
            wcv_.wait_for(lk, std::chrono::milliseconds(commit_interval_ms_),
                          [this] { return writer_stop_ || !handoff_.empty(); });
            b = std::move(handoff_);
            handoff_ = Batch{};
            stopping = writer_stop_;
        }
        commit(b);
        if (stopping) break;
    }
    if (!pending_.empty())
        log::error("tlsrpt: outcomes not written at stop", {{"rows", std::to_string(pending_.rows)}});
}

void Collector::submit(Session s, const char* source) {
    std::lock_guard<std::mutex> lk(mu_);
    if (queue_.size() >= kMaxQueue) {
        if (queue_dropped_++ % 10'000 == 0)
            log::warn("tlsrpt: outcome queue full, outcome dropped",
                      {{"source", source}, {"dropped", std::to_string(queue_dropped_)}});
        return;
    }
    queue_.emplace_back(std::move(s), source);
}

void Collector::note_reject(Reject r, const std::string& why, Batch& b) {
    b.counters["datagrams_invalid"] += 1;
    b.counters[std::string("datagrams_invalid_") + reject_name(r)] += 1;
    // One line per kind at most every 60 s, with how many were not logged in between.
    int k = static_cast<int>(r);
    UnixTime now = clock_.now();
    if (now - last_reject_log_[k] >= 60) {
        log::warn("tlsrpt: datagram rejected",
                  {{"kind", reject_name(r)},
                   {"why", why},
                   {"not_logged_since_last", std::to_string(suppressed_[k])}});
        last_reject_log_[k] = now;
        suppressed_[k] = 0;
    } else {
        ++suppressed_[k];
    }
}

void Collector::handle(std::string_view bytes, std::size_t real_len, Batch& b) {
    b.counters["datagrams_received"] += 1;
    if (real_len > kMaxDatagram || real_len > bytes.size()) {
        note_reject(Reject::Oversized, "datagram of " + std::to_string(real_len) + " bytes", b);
        return;
    }
    Parsed p = parse_datagram(bytes);
    if (p.reject != Reject::None) {
        note_reject(p.reject, p.why, b);
        return;
    }
    b.counters["sessions_recorded"] += 1;
    b.add(utc_day(clock_.now()), p.session);
}

void Collector::commit(Batch& b) {
    if (!pending_.empty()) {
        pending_.merge(std::move(b));
        b = std::move(pending_);
        pending_ = Batch{};
    }
    if (b.empty()) return;
    std::string err;
    if (store_->apply(b, err)) {
        b = Batch{};
        return;
    }
    // Keep the counts and try again next interval; past the bound, new counts are dropped
    // (and counted) rather than growing without end.
    UnixTime now = clock_.now();
    if (now - last_store_error_log_ >= 60) {
        log::error("tlsrpt: store write failed, outcomes kept in memory and retried",
                   {{"db", db_path_}, {"error", err}, {"rows", std::to_string(b.rows)}});
        last_store_error_log_ = now;
    }
    if (b.rows > kMaxPendingRows) {
        log::error("tlsrpt: store unwritable for too long, outcomes dropped",
                   {{"rows", std::to_string(b.rows)}});
        std::int64_t lost = 0;
        for (const auto& [gk, pols] : b.groups)
            for (const auto& [pk, c] : pols) lost += c.success + c.failure;
        auto counters = std::move(b.counters);
        b = Batch{};
        b.counters = std::move(counters);
        b.counters["sessions_lost"] += lost;
    }
    pending_ = std::move(b);
    b = Batch{};
}

void Collector::reader() {
    // Only receive here: the kernel's queue of a unix datagram socket is short
    // (net.unix.max_dgram_qlen), and libtlsrpt drops a datagram when it is full. Parsing is the
    // next thread's work; this one moves datagrams into memory as fast as they come.
    std::vector<char> buf(kMaxDatagram + 1);
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(std::uint32_t))];
    std::vector<Raw> got;
    while (!stop_.load()) {
        pollfd pfd{fd_.get(), POLLIN, 0};
        if (::poll(&pfd, 1, 100) <= 0) continue;
        for (int k = 0; k < 256; ++k) {
            iovec iov{buf.data(), buf.size()};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = ctrl;
            msg.msg_controllen = sizeof ctrl;
            ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_TRUNC);
            if (n < 0) {
                if (errno == EINTR) continue;
                break;  // EAGAIN: empty
            }
            for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                    std::uint32_t ovfl;
                    std::memcpy(&ovfl, CMSG_DATA(c), sizeof ovfl);
                    kernel_overflow_.store(ovfl);
                }
            }
            std::size_t real = static_cast<std::size_t>(n);
            if ((msg.msg_flags & MSG_TRUNC) && real < buf.size()) real = buf.size();
            std::size_t have = std::min(real, buf.size());
            // An oversized datagram is kept as its length only: it is rejected whole anyway.
            Raw r;
            r.real = real;
            if (real <= kMaxDatagram) r.bytes.assign(buf.data(), have);
            got.push_back(std::move(r));
        }
        if (got.empty()) continue;
        bool wake;
        {
            std::lock_guard<std::mutex> lk(rmu_);
            wake = raw_.empty();
            for (auto& r : got) {
                if (raw_bytes_ + r.bytes.size() > kMaxRawBytes) {
                    ++raw_dropped_;
                    continue;
                }
                raw_bytes_ += r.bytes.size() + 64;
                raw_.push_back(std::move(r));
            }
        }
        got.clear();
        if (wake) rcv_.notify_one();
    }
    rcv_.notify_one();
}

void Collector::loop() {
    // Below the reader: when both want the CPU, receiving goes first (a datagram not taken
    // off the socket in time is lost; one parsed late is not).
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
    Batch batch;
    auto interval = std::chrono::milliseconds(commit_interval_ms_);
    auto next_commit = std::chrono::steady_clock::now() + interval;
    std::deque<Raw> work;
    for (;;) {
        bool stopping = stop_.load();
        std::uint64_t dropped_here = 0;
        {
            std::unique_lock<std::mutex> lk(rmu_);
            if (raw_.empty() && !stopping)
                rcv_.wait_until(lk, next_commit, [this] { return !raw_.empty() || stop_.load(); });
            work.swap(raw_);
            raw_bytes_ = 0;
            dropped_here = raw_dropped_;
            raw_dropped_ = 0;
        }
        if (dropped_here) {
            batch.counters["datagrams_received"] += static_cast<std::int64_t>(dropped_here);
            batch.counters["datagrams_dropped"] += static_cast<std::int64_t>(dropped_here);
            log::warn("tlsrpt: datagrams dropped: the parser is behind and the memory queue is full",
                      {{"dropped", std::to_string(dropped_here)}});
        }
        for (auto& r : work) handle(r.bytes, r.real, batch);
        work.clear();
        std::uint32_t ovfl = kernel_overflow_.load();
        if (ovfl != last_overflow_) {
            batch.counters["datagrams_dropped"] += ovfl - last_overflow_;
            log::warn("tlsrpt: the kernel dropped datagrams (receive queue full)",
                      {{"dropped", std::to_string(ovfl - last_overflow_)}});
            last_overflow_ = ovfl;
        }
        {
            std::deque<std::pair<Session, const char*>> q;
            {
                std::lock_guard<std::mutex> lk(mu_);
                q.swap(queue_);
                if (queue_dropped_) {
                    batch.counters["outcomes_dropped"] += static_cast<std::int64_t>(queue_dropped_);
                    queue_dropped_ = 0;
                }
            }
            std::string day = utc_day(clock_.now());
            for (auto& [s, source] : q) {
                batch.counters[std::string("sessions_from_") + source] += 1;
                batch.add(day, s);
            }
        }
        auto now = std::chrono::steady_clock::now();
        if (now >= next_commit || stopping || batch.rows > 50'000) {
            if (!batch.empty()) {
                std::lock_guard<std::mutex> lk(wmu_);
                if (handoff_.rows > kMaxPendingRows) {
                    // The writer is stuck (a disk that does not answer): keep the counters,
                    // count the sessions that cannot be kept.
                    std::int64_t lost = 0;
                    for (const auto& [gk, pols] : batch.groups)
                        for (const auto& [pk, c] : pols) lost += c.success + c.failure;
                    batch.groups.clear();
                    batch.rows = 0;
                    batch.counters["sessions_lost"] += lost;
                }
                handoff_.merge(std::move(batch));
                batch = Batch{};
            }
            wcv_.notify_one();
            next_commit = now + interval;
        }
        if (stopping) {
            std::lock_guard<std::mutex> lk(rmu_);
            if (raw_.empty()) break;
        }
    }
}

}  // namespace strictmx::tlsrpt
