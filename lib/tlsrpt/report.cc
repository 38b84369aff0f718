// SPDX-License-Identifier: MIT
#include "tlsrpt/report.hh"

#include <zlib.h>

#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "dns/name.hh"
#include "util/strings.hh"

namespace strictmx::tlsrpt {
namespace {

using json = nlohmann::ordered_json;

std::string compact_day(const std::string& day) {
    std::string s;
    for (char c : day)
        if (c != '-') s += c;
    return s;
}

}  // namespace

std::string submitter_domain(std::string_view contact_info) {
    std::string_view s = contact_info;
    if (s.starts_with("mailto:")) s.remove_prefix(7);
    std::string host;
    if (s.starts_with("https://")) {
        s.remove_prefix(8);
        host = std::string(s.substr(0, s.find_first_of("/:?#")));
    } else {
        auto at = s.rfind('@');
        if (at == std::string_view::npos) return {};
        host = std::string(s.substr(at + 1));
    }
    host = to_lower(host);
    return dns::is_hostname(host) ? host : std::string();
}

std::string report_id(const Group& g, const std::string& uid, const Submitter& s) {
    // Every part is dot-atom text: digits, hex, an LDH domain, an LDH submitter.
    return compact_day(g.day) + "." + uid + "." + g.domain + "@" + s.domain;
}

std::string report_json(const Group& g, const std::vector<PolicyCounts>& policies,
                        const Submitter& s, const std::string& id) {
    json r;
    r["organization-name"] = s.organization_name;
    r["date-range"] = {{"start-datetime", g.day + "T00:00:00Z"},
                       {"end-datetime", g.day + "T23:59:59Z"}};
    r["contact-info"] = s.contact_info;
    r["report-id"] = id;
    json pols = json::array();
    for (const auto& pc : policies) {
        json p;
        json pol;
        pol["policy-type"] = policy_type_name(pc.policy.type);
        pol["policy-string"] = pc.policy.strings;
        pol["policy-domain"] = pc.policy.domain;
        if (!pc.policy.mx_hosts.empty()) pol["mx-host"] = pc.policy.mx_hosts;
        p["policy"] = pol;
        p["summary"] = {{"total-successful-session-count", pc.success},
                        {"total-failure-session-count", pc.failure}};
        json details = json::array();
        for (const auto& [d, n] : pc.details) {
            json fd;
            fd["result-type"] = result_type_name(d.code);
            if (d.present & 1) fd["sending-mta-ip"] = d.sending_ip;
            if (d.present & 2) fd["receiving-mx-hostname"] = d.mx_hostname;
            if (d.present & 4) fd["receiving-mx-helo"] = d.mx_helo;
            if (d.present & 8) fd["receiving-ip"] = d.receiving_ip;
            fd["failed-session-count"] = n;
            if (d.present & 16) fd["additional-information"] = d.additional;
            if (d.present & 32) fd["failure-reason-code"] = d.reason_code;
            details.push_back(std::move(fd));
        }
        p["failure-details"] = std::move(details);
        pols.push_back(std::move(p));
    }
    r["policies"] = std::move(pols);
    // Strings came from the network through the collector's UTF-8 check; replace anyway, so
    // a damaged store can never make the dump throw.
    return r.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string report_filename(const Group& g, const std::string& uid, const Submitter& s) {
    UnixTime begin = day_start(g.day).value_or(0);
    return s.domain + "!" + g.domain + "!" + std::to_string(begin) + "!" +
           std::to_string(begin + 86'399) + "!" + uid + ".json.gz";
}

std::string gzip(std::string_view data) {
    z_stream z{};
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("deflateInit2 failed");
    std::string out;
    out.resize(deflateBound(&z, static_cast<uLong>(data.size())) + 32);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) throw std::runtime_error("deflate failed");
    return out;
}

std::string gunzip(std::string_view data) {
    z_stream z{};
    if (inflateInit2(&z, 15 + 16) != Z_OK) return {};
    std::string out;
    char buf[65536];
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    int rc;
    do {
        z.next_out = reinterpret_cast<Bytef*>(buf);
        z.avail_out = sizeof buf;
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&z);
            return {};
        }
        out.append(buf, sizeof buf - z.avail_out);
    } while (rc != Z_STREAM_END && out.size() < (1u << 30));
    inflateEnd(&z);
    return rc == Z_STREAM_END ? out : std::string();
}

std::string base64(std::string_view data, std::size_t line) {
    static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out, cur;
    auto put = [&](char c) {
        cur += c;
        if (line && cur.size() == line) {
            out += cur + "\r\n";
            cur.clear();
        }
    };
    std::size_t i = 0;
    for (; i + 2 < data.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(data[i]) << 16) |
                     (static_cast<unsigned char>(data[i + 1]) << 8) |
                     static_cast<unsigned char>(data[i + 2]);
        put(k[v >> 18]);
        put(k[(v >> 12) & 63]);
        put(k[(v >> 6) & 63]);
        put(k[v & 63]);
    }
    if (i < data.size()) {
        unsigned v = static_cast<unsigned char>(data[i]) << 16;
        if (i + 1 < data.size()) v |= static_cast<unsigned char>(data[i + 1]) << 8;
        put(k[v >> 18]);
        put(k[(v >> 12) & 63]);
        put(i + 1 < data.size() ? k[(v >> 6) & 63] : '=');
        put('=');
    }
    if (!cur.empty()) out += cur + (line ? "\r\n" : "");
    return out;
}

std::string report_mail(const Group& g, const std::string& id, const std::string& filename,
                        const std::string& gz, const Submitter& s, const std::string& from,
                        const std::string& to, UnixTime now, const std::string& boundary) {
    char date[64];
    std::time_t tt = static_cast<std::time_t>(now);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    // The organization name is free text from the configuration: it goes in the body only,
    // as printable ASCII.
    std::string org;
    for (unsigned char c : s.organization_name) org += (c >= 0x20 && c < 0x7f) ? char(c) : '?';
    std::string m;
    m += "From: " + from + "\r\n";
    m += "To: " + to + "\r\n";
    std::string subject = "Subject: Report Domain: " + g.domain + " Submitter: " + s.domain;
    std::string rid = " Report-ID: <" + id + ">";
    // One line when it fits in 998 octets; otherwise folded before Report-ID (unfolding gives
    // back the same single blank).
    m += subject + (subject.size() + rid.size() <= 998 ? "" : "\r\n") + rid + "\r\n";
    m += "Date: " + std::string(date) + "\r\n";
    m += "Message-ID: <" + boundary + "." + id + ">\r\n";
    m += "MIME-Version: 1.0\r\n";
    m += "TLS-Report-Domain: " + g.domain + "\r\n";
    m += "TLS-Report-Submitter: " + s.domain + "\r\n";
    m += "TLS-Required: No\r\n";
    m += "Auto-Submitted: auto-generated\r\n";
    m += "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n";
    m += " boundary=\"" + boundary + "\"\r\n";
    m += "\r\n";
    m += "This is a MIME-formatted message.\r\n";
    m += "\r\n--" + boundary + "\r\n";
    m += "Content-Type: text/plain; charset=\"us-ascii\"\r\n";
    m += "Content-Transfer-Encoding: 7bit\r\n\r\n";
    m += "This is an aggregate TLS report (RFC 8460) from " + org + "\r\n";
    m += "for " + g.domain + ", " + g.day + " (UTC). Report-ID: <" + id + ">\r\n";
    m += "\r\n--" + boundary + "\r\n";
    m += "Content-Type: application/tlsrpt+gzip; name=\"" + filename + "\"\r\n";
    m += "Content-Transfer-Encoding: base64\r\n";
    m += "Content-Disposition: attachment; filename=\"" + filename + "\"\r\n\r\n";
    m += base64(gz);
    m += "\r\n--" + boundary + "--\r\n";
    return m;
}

}  // namespace strictmx::tlsrpt
