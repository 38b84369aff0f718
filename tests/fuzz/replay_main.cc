// SPDX-License-Identifier: MIT
// Replays a fuzz target over a corpus directory (ctest runs this) or single files (a
// libFuzzer reproducer), plus generated mutations of each seed so the run means something
// without libFuzzer: about 20,000 inputs per corpus (fuzz_dns_answer runs the whole engine:
// about 1 ms an input under the sanitizers), at least 10 per seed.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {
// What is running, for the abort handler (an oracle violation names the seed it came from).
char g_current[512] = "";

void on_abort(int) {
    const char msg[] = "replay: aborted on ";
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, g_current, std::strlen(g_current));
    (void)!write(2, "\n", 1);
    std::signal(SIGABRT, SIG_DFL);
    std::raise(SIGABRT);
}

void set_current(const std::string& path, int mutation) {
    if (mutation < 0)
        std::snprintf(g_current, sizeof g_current, "%s", path.c_str());
    else
        std::snprintf(g_current, sizeof g_current, "%s mutation %d", path.c_str(), mutation);
}

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void run(const std::string& s) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}
}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR | FILE...\n", argv[0]);
        return 2;
    }
    std::signal(SIGABRT, on_abort);
    std::vector<std::pair<std::string, std::string>> seeds;  // path, bytes
    bool files_only = true;
    for (int i = 1; i < argc; ++i) {
        std::filesystem::path arg(argv[i]);
        if (std::filesystem::is_directory(arg)) {
            files_only = false;
            for (const auto& e : std::filesystem::directory_iterator(arg))
                if (e.is_regular_file()) seeds.emplace_back(e.path().string(), slurp(e.path()));
        } else {
            seeds.emplace_back(arg.string(), slurp(arg));
        }
    }
    if (seeds.empty()) {
        std::fprintf(stderr, "no seeds in %s\n", argv[1]);
        return 1;
    }
    std::sort(seeds.begin(), seeds.end());
    // A reproducer runs alone; a corpus also gets its mutations.
    int per_seed = files_only ? 0 : std::max(10, static_cast<int>(20'000 / seeds.size()));
    std::mt19937 rng(12345);
    std::size_t runs = 0;
    for (const auto& [path, s] : seeds) {
        set_current(path, -1);
        run(s);
        ++runs;
        for (int i = 0; i < per_seed; ++i) {
            std::string m = s;
            int edits = 1 + static_cast<int>(rng() % 4);
            for (int k = 0; k < edits; ++k) {
                switch (rng() % 4) {
                    case 0:
                        if (!m.empty()) m[rng() % m.size()] = static_cast<char>(rng() & 0xff);
                        break;
                    case 1:
                        m.insert(m.begin() + static_cast<long>(m.empty() ? 0 : rng() % m.size()),
                                 static_cast<char>(rng() & 0xff));
                        break;
                    case 2:
                        if (!m.empty()) m.erase(m.begin() + static_cast<long>(rng() % m.size()));
                        break;
                    case 3:
                        m = m.substr(0, m.empty() ? 0 : rng() % m.size());
                        break;
                }
            }
            set_current(path, i);
            run(m);
            ++runs;
        }
    }
    std::printf("%zu seeds, %zu inputs replayed\n", seeds.size(), runs);
    return 0;
}
