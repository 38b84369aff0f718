// SPDX-License-Identifier: MIT
// Replays a fuzz target over every file of a corpus directory (ctest runs this), plus a few
// thousand generated mutations of each seed so the run means something without libFuzzer.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    std::vector<std::string> seeds;
    for (const auto& e : std::filesystem::directory_iterator(argv[1])) {
        if (!e.is_regular_file()) continue;
        std::ifstream in(e.path(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        seeds.push_back(ss.str());
    }
    if (seeds.empty()) {
        std::fprintf(stderr, "no seeds in %s\n", argv[1]);
        return 1;
    }
    std::mt19937 rng(12345);
    std::size_t runs = 0;
    for (const auto& s : seeds) {
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
        ++runs;
        for (int i = 0; i < 2000; ++i) {
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
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(m.data()), m.size());
            ++runs;
        }
    }
    std::printf("%zu seeds, %zu inputs replayed\n", seeds.size(), runs);
    return 0;
}
