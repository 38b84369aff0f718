// SPDX-License-Identifier: MIT
// The cheapest milter that sees what strictmx-milter sees: libmilter, every step of the
// protocol strictmx-milter negotiates (connect, HELO and header without replies, no body),
// no decision, no change. Postfix's throughput with it is the ceiling for any libmilter
// milter on the same machine (tests/bench/milter/run.sh, variant "null").
//
// Usage: strictmx-null-milter inet:PORT@HOST
#include <libmilter/mfapi.h>

#include <cstdio>

namespace {
unsigned long g_nr = 0;

sfsistat reply(unsigned long nr) {
    return (g_nr & nr) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}
sfsistat on_negotiate(SMFICTX*, unsigned long, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2,
                      unsigned long* pf3) {
    *pf0 = SMFIF_ADDHDRS | SMFIF_CHGHDRS;
    *pf1 = f1 & (SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NOBODY |
                 SMFIP_NOUNKNOWN | SMFIP_NODATA);
    g_nr = *pf1;  // the same for every connection from one MTA
    *pf2 = *pf3 = 0;
    return SMFIS_CONTINUE;
}
sfsistat on_connect(SMFICTX*, char*, _SOCK_ADDR*) {
    return reply(SMFIP_NR_CONN);
}
sfsistat on_helo(SMFICTX*, char*) {
    return reply(SMFIP_NR_HELO);
}
sfsistat on_env(SMFICTX*, char**) {
    return SMFIS_CONTINUE;
}
sfsistat on_header(SMFICTX*, char*, char*) {
    return reply(SMFIP_NR_HDR);
}
sfsistat on_eoh(SMFICTX*) {
    return reply(SMFIP_NR_EOH);
}
sfsistat on_eom(SMFICTX*) {
    return SMFIS_CONTINUE;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fputs("usage: strictmx-null-milter inet:PORT@HOST\n", stderr);
        return 2;
    }
    smfiDesc d{};
    d.xxfi_name = const_cast<char*>("strictmx-null-milter");
    d.xxfi_version = SMFI_VERSION;
    d.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS;
    d.xxfi_connect = on_connect;
    d.xxfi_helo = on_helo;
    d.xxfi_envfrom = on_env;
    d.xxfi_envrcpt = on_env;
    d.xxfi_header = on_header;
    d.xxfi_eoh = on_eoh;
    d.xxfi_eom = on_eom;
    d.xxfi_negotiate = on_negotiate;
    if (smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(d) != MI_SUCCESS ||
        smfi_opensocket(true) != MI_SUCCESS)
        return 1;
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
