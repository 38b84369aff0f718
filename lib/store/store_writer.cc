// SPDX-License-Identifier: MIT
// The cache's writer thread. Callers queue rows (one pending write per domain: a newer write
// replaces an older one, so a burst of changes to one domain costs one row); the thread
// commits whatever is queued in one transaction per batch. Another process holding the
// write lock, a full disk or a damaged file delays or loses cache writes, never a lookup.
#include <chrono>

#include "store/store.hh"
#include "util/log.hh"

namespace strictmx::store {

namespace {
// Collect writes for this long before a batch, so a burst of resolutions shares a
// transaction (one fsync of the WAL) instead of one each.
constexpr auto kBatchDelay = std::chrono::milliseconds(50);
constexpr auto kMaxRetryDelay = std::chrono::seconds(30);
}  // namespace

Store::~Store() {
    if (writer_.joinable()) {
        {
            std::lock_guard lock(q_mu_);
            stop_ = true;
        }
        q_cv_.notify_all();
        writer_.join();
    }
}

void Store::put(StsRow row) {
    if (!persistent_) return;  // memory only: the engine's index is the cache
    std::string domain = row.domain;
    {
        std::lock_guard lock(q_mu_);
        auto it = pending_.find(domain);
        if (it != pending_.end()) {
            it->second = std::move(row);
        } else if (pending_.size() >= kMaxPendingWrites) {
            if (stats_.dropped++ == 0)
                log::error("cache writes are not keeping up, dropping writes until they do",
                           {{"pending", std::to_string(pending_.size())}});
            rewrite_needed_ = true;
            return;
        } else {
            pending_.emplace(std::move(domain), std::move(row));
        }
    }
    q_cv_.notify_one();
}

void Store::erase(const std::string& domain) {
    if (!persistent_) return;
    {
        std::lock_guard lock(q_mu_);
        auto it = pending_.find(domain);
        if (it != pending_.end()) {
            it->second.reset();
        } else if (pending_.size() >= kMaxPendingWrites) {
            ++stats_.dropped;
            rewrite_needed_ = true;
            return;
        } else {
            pending_.emplace(domain, std::nullopt);
        }
    }
    q_cv_.notify_one();
}

bool Store::flush() {
    if (!writer_.joinable()) return true;
    std::unique_lock lock(q_mu_);
    q_cv_.notify_one();
    idle_cv_.wait(lock, [&] { return (pending_.empty() && !writing_) || !last_batch_ok_; });
    return last_batch_ok_ && pending_.empty();
}

Store::WriterStats Store::writer_stats() const {
    std::lock_guard lock(q_mu_);
    WriterStats s = stats_;
    s.pending = pending_.size();
    return s;
}

bool Store::write_batch(std::unordered_map<std::string, std::optional<StsRow>>& batch) {
    std::lock_guard lock(db_mu_);
    sqlite3* db = db_.get();
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    bool ok = rc == SQLITE_OK;
    for (auto it = batch.begin(); ok && it != batch.end(); ++it)
        ok = it->second ? put_now(*it->second) : erase_now(it->first);
    if (ok) ok = (rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr)) == SQLITE_OK;
    if (ok) return true;
    rc = sqlite3_extended_errcode(db);
    std::string why = sqlite3_errmsg(db);
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    int primary = rc & 0xff;
    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
        // The file went bad under us: replace it, then write this batch and have the owner
        // write everything else it holds again.
        auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
        if (recover(now, why)) {
            rewrite_needed_ = true;
            return false;  // retried at once against the new file
        }
    }
    throw std::runtime_error(why);
}

void Store::writer_loop() {
    auto delay = std::chrono::milliseconds(0);
    bool failing = false;
    std::unique_lock lock(q_mu_);
    for (;;) {
        q_cv_.wait(lock, [&] { return stop_ || !pending_.empty(); });
        if (pending_.empty() && stop_) return;
        // Let a burst collect (or back off after a failure), unless stopping.
        auto wait = delay.count()
                        ? delay
                        : std::chrono::duration_cast<std::chrono::milliseconds>(kBatchDelay);
        q_cv_.wait_for(lock, wait, [&] { return stop_; });
        auto batch = std::move(pending_);
        pending_.clear();
        writing_ = true;
        lock.unlock();
        bool ok = false;
        std::string why;
        try {
            ok = write_batch(batch) || write_batch(batch);
        } catch (const std::exception& e) {
            why = e.what();
        }
        lock.lock();
        writing_ = false;
        ++stats_.batches;
        if (ok) {
            stats_.rows += batch.size();
            if (failing) log::info("cache writes work again", {{"path", path_}});
            failing = false;
            delay = std::chrono::milliseconds(0);
            last_batch_ok_ = true;
        } else {
            ++stats_.failed_batches;
            if (!failing)
                log::error(
                    "cache write failed, keeping the entries in memory and retrying",
                    {{"path", path_}, {"error", why}, {"rows", std::to_string(batch.size())}});
            failing = true;
            last_batch_ok_ = false;
            // Requeue what was not superseded meanwhile; the bound still holds.
            for (auto& [domain, row] : batch) {
                if (pending_.size() >= kMaxPendingWrites) {
                    stats_.dropped += 1;
                    rewrite_needed_ = true;
                    continue;
                }
                pending_.try_emplace(domain, std::move(row));
            }
            delay = std::min<std::chrono::milliseconds>(
                std::max<std::chrono::milliseconds>(delay * 2, std::chrono::milliseconds(500)),
                kMaxRetryDelay);
            if (stop_) return;  // shutting down with the disk failing: the cache is a cache
        }
        idle_cv_.notify_all();
    }
}

}  // namespace strictmx::store
