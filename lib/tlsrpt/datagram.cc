// SPDX-License-Identifier: MIT
#include "tlsrpt/datagram.hh"

#include <nlohmann/json.hpp>

#include "dns/name.hh"
#include "util/strings.hh"

namespace strictmx::tlsrpt {
namespace {

using json = nlohmann::json;

struct Code {
    int code;
    const char* name;
};
constexpr Code kCodes[] = {
    {201, "starttls-not-supported"}, {202, "certificate-host-mismatch"},
    {203, "certificate-not-trusted"}, {204, "certificate-expired"},
    {205, "validation-failure"},     {301, "sts-policy-fetch-error"},
    {302, "sts-policy-invalid"},     {303, "sts-webpki-invalid"},
    {304, "tlsa-invalid"},           {305, "dnssec-invalid"},
    {306, "dane-required"},
};

// Members of a failure detail: libtlsrpt's short names, in the order of `present` bits.
constexpr const char* kDetailKeys[] = {"s", "n", "h", "r", "a", "f"};
std::string FailureDetail::*const kDetailFields[] = {
    &FailureDetail::sending_ip,   &FailureDetail::mx_hostname, &FailureDetail::mx_helo,
    &FailureDetail::receiving_ip, &FailureDetail::additional,  &FailureDetail::reason_code};

// Domain names from the MTA: lowercase A-labels, no trailing dot, valid host names.
bool normalize_domain(std::string_view in, std::string& out) {
    // No NUL, blank or control byte: libidn2 takes a C string and would read a prefix.
    for (unsigned char c : in)
        if (c <= 0x20 || c == 0x7f) return false;
    std::string s = to_lower(in);
    if (!s.empty() && s.back() == '.') s.pop_back();
    if (s.empty() || s.size() > 253) return false;
    std::string a = dns::to_alabel(s);
    if (a.empty() || !dns::is_hostname(a)) return false;
    out = std::move(a);
    return true;
}

Parsed reject(Reject r, std::string why) {
    Parsed p;
    p.reject = r;
    p.why = std::move(why);
    return p;
}

bool string_list(const json& v, std::vector<std::string>& out) {
    if (!v.is_array() || v.size() > 1000) return false;
    for (const auto& e : v) {
        if (!e.is_string()) return false;
        out.push_back(e.get<std::string>());
    }
    return true;
}

bool get_int(const json& v, long long lo, long long hi, long long& out) {
    if (!v.is_number_integer()) return false;
    out = v.get<long long>();
    return out >= lo && out <= hi;
}

}  // namespace

const char* policy_type_name(PolicyType t) {
    switch (t) {
        case PolicyType::Tlsa: return "tlsa";
        case PolicyType::Sts: return "sts";
        case PolicyType::NoPolicyFound: return "no-policy-found";
    }
    return "no-policy-found";
}

const char* result_type_name(int code) {
    for (const auto& c : kCodes)
        if (c.code == code) return c.name;
    return nullptr;
}

int result_type_code(std::string_view name) {
    for (const auto& c : kCodes)
        if (name == c.name) return c.code;
    return 0;
}

const char* reject_name(Reject r) {
    switch (r) {
        case Reject::None: return "none";
        case Reject::Oversized: return "oversized";
        case Reject::NotUtf8: return "not_utf8";
        case Reject::NotJson: return "not_json";
        case Reject::NotObject: return "not_object";
        case Reject::WrongVersion: return "wrong_version";
        case Reject::MissingField: return "missing_field";
        case Reject::BadField: return "bad_field";
    }
    return "unknown";
}

bool is_utf8(std::string_view s) {
    std::size_t i = 0, n = s.size();
    while (i < n) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        int len;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + static_cast<std::size_t>(len) > n) return false;
        for (int k = 1; k < len; ++k) {
            unsigned char cc = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += static_cast<std::size_t>(len);
    }
    return true;
}

Parsed parse_datagram(std::string_view bytes) {
    if (bytes.size() > kMaxDatagram) return reject(Reject::Oversized, "over 65535 bytes");
    if (!is_utf8(bytes)) return reject(Reject::NotUtf8, "not UTF-8");
    json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return reject(Reject::NotJson, "not JSON");
    if (!j.is_object()) return reject(Reject::NotObject, "not a JSON object");
    auto dpv = j.find("dpv");
    if (dpv == j.end() || !dpv->is_string() || dpv->get<std::string>() != "1")
        return reject(Reject::WrongVersion, "dpv is not \"1\"");
    auto d = j.find("d");
    auto pr = j.find("pr");
    auto pols = j.find("policies");
    if (d == j.end()) return reject(Reject::MissingField, "no d");
    if (pr == j.end()) return reject(Reject::MissingField, "no pr");
    if (pols == j.end()) return reject(Reject::MissingField, "no policies");
    Parsed out;
    Session& s = out.session;
    if (!d->is_string() || !normalize_domain(d->get<std::string>(), s.domain))
        return reject(Reject::BadField, "d is not a domain name");
    if (!pr->is_string()) return reject(Reject::BadField, "pr is not a string");
    s.record = pr->get<std::string>();
    if (!pols->is_array() || pols->empty() || pols->size() > 64)
        return reject(Reject::BadField, "policies is not a list of 1-64 policies");
    for (const auto& pj : *pols) {
        if (!pj.is_object()) return reject(Reject::BadField, "a policy is not an object");
        PolicyOutcome p;
        auto pt = pj.find("policy-type");
        if (pt == pj.end()) return reject(Reject::MissingField, "no policy-type");
        long long n = 0;
        if (pt->is_string()) {
            std::string name = pt->get<std::string>();
            if (name == "tlsa") p.type = PolicyType::Tlsa;
            else if (name == "sts") p.type = PolicyType::Sts;
            else if (name == "no-policy-found") p.type = PolicyType::NoPolicyFound;
            else return reject(Reject::BadField, "unknown policy-type");
        } else if (get_int(*pt, 0, 1000, n) && (n == 1 || n == 2 || n == 9)) {
            p.type = static_cast<PolicyType>(n);
        } else {
            return reject(Reject::BadField, "unknown policy-type");
        }
        auto pd = pj.find("policy-domain");
        if (pd == pj.end() || pd->is_null()) {
            p.domain = s.domain;  // Postfix 3.10.0-3.10.4 send none
        } else if (!pd->is_string() || !normalize_domain(pd->get<std::string>(), p.domain)) {
            return reject(Reject::BadField, "policy-domain is not a domain name");
        }
        if (auto ps = pj.find("policy-string"); ps != pj.end() && !string_list(*ps, p.strings))
            return reject(Reject::BadField, "policy-string is not a list of strings");
        if (auto mx = pj.find("mx-host"); mx != pj.end() && !string_list(*mx, p.mx_hosts))
            return reject(Reject::BadField, "mx-host is not a list of strings");
        auto f = pj.find("f");
        if (f == pj.end()) return reject(Reject::MissingField, "no f");
        if (!get_int(*f, 0, 1, n)) return reject(Reject::BadField, "f is not 0 or 1");
        p.failed = n == 1;
        if (auto t = pj.find("t"); t != pj.end() && !get_int(*t, 0, 1'000'000, n))
            return reject(Reject::BadField, "t is not a count");
        if (auto fd = pj.find("failure-details"); fd != pj.end()) {
            if (!fd->is_array() || fd->size() > 1000)
                return reject(Reject::BadField, "failure-details is not a list");
            for (const auto& dj : *fd) {
                if (!dj.is_object()) return reject(Reject::BadField, "a failure is not an object");
                FailureDetail det;
                auto c = dj.find("c");
                if (c == dj.end()) return reject(Reject::MissingField, "a failure without c");
                if (c->is_string()) det.code = result_type_code(c->get<std::string>());
                else if (get_int(*c, 0, 100'000, n)) det.code = static_cast<int>(n);
                if (!result_type_name(det.code))
                    return reject(Reject::BadField, "unknown failure code");
                for (unsigned k = 0; k < 6; ++k) {
                    auto m = dj.find(kDetailKeys[k]);
                    if (m == dj.end() || m->is_null()) continue;
                    if (!m->is_string())
                        return reject(Reject::BadField,
                                      std::string("failure member ") + kDetailKeys[k] +
                                          " is not a string");
                    det.*kDetailFields[k] = m->get<std::string>();
                    det.present |= 1u << k;
                }
                p.failures.push_back(std::move(det));
            }
        }
        s.policies.push_back(std::move(p));
    }
    return out;
}

std::string policy_key(const PolicyOutcome& p) {
    json j = json::array({static_cast<int>(p.type), p.domain, p.strings, p.mx_hosts});
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool policy_from_key(std::string_view key, PolicyOutcome& p) {
    json j = json::parse(key.begin(), key.end(), nullptr, false);
    if (j.is_discarded() || !j.is_array() || j.size() != 4 || !j[0].is_number_integer() ||
        !j[1].is_string())
        return false;
    int t = j[0].get<int>();
    if (t != 1 && t != 2 && t != 9) return false;
    p = PolicyOutcome{};
    p.type = static_cast<PolicyType>(t);
    p.domain = j[1].get<std::string>();
    return string_list(j[2], p.strings) && string_list(j[3], p.mx_hosts);
}

std::string detail_key(const FailureDetail& d) {
    json j = json::array();
    j.push_back(d.code);
    for (unsigned k = 0; k < 6; ++k) {
        if (d.present & (1u << k)) j.push_back(d.*kDetailFields[k]);
        else j.push_back(nullptr);
    }
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool detail_from_key(std::string_view key, FailureDetail& d) {
    json j = json::parse(key.begin(), key.end(), nullptr, false);
    if (j.is_discarded() || !j.is_array() || j.size() != 7 || !j[0].is_number_integer())
        return false;
    d = FailureDetail{};
    d.code = j[0].get<int>();
    for (unsigned k = 0; k < 6; ++k) {
        const auto& m = j[k + 1];
        if (m.is_null()) continue;
        if (!m.is_string()) return false;
        d.*kDetailFields[k] = m.get<std::string>();
        d.present |= 1u << k;
    }
    return result_type_name(d.code) != nullptr;
}

}  // namespace strictmx::tlsrpt
