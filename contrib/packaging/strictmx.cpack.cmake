# SPDX-License-Identifier: MIT
# Packaging: install rules for the operator files and CPack settings for .deb and .rpm.
# Included at the end of the top-level CMakeLists.txt, after the targets exist:
#
#   include(${PROJECT_SOURCE_DIR}/contrib/packaging/strictmx.cpack.cmake)
#
# Build packages with `cmake --build BUILD_DIR --target package` (see README.md here).
# The binaries themselves are installed by policyd/CMakeLists.txt (sbin and bin).

include_guard(GLOBAL)
include(GNUInstallDirs)

cmake_path(GET CMAKE_CURRENT_LIST_DIR PARENT_PATH _strictmx_top)  # contrib/
cmake_path(GET _strictmx_top PARENT_PATH _strictmx_top)           # the source tree
set(_strictmx_pkg "${CMAKE_CURRENT_LIST_DIR}")

# Relative destinations land under the packaging prefix (/usr); absolute ones stay as they
# are. /usr/lib/systemd/system, /usr/lib/sysusers.d and /usr/lib/tmpfiles.d are read by
# systemd on Debian and on RPM-based systems alike.
set(STRICTMX_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where the systemd unit is installed (relative: under the install prefix)")
set(STRICTMX_SYSUSERS_DIR "lib/sysusers.d" CACHE STRING
    "Where the sysusers.d file is installed (relative: under the install prefix)")
set(STRICTMX_TMPFILES_DIR "lib/tmpfiles.d" CACHE STRING
    "Where the tmpfiles.d file is installed (relative: under the install prefix)")
set(STRICTMX_CONFIG_DIR "/etc/strictmx" CACHE PATH
    "Where strictmx.toml is installed (absolute; the unit and the daemon read /etc/strictmx)")
set(STRICTMX_PACKAGE_MAINTAINER "strictmx developers <dev@strictmx.invalid>" CACHE STRING
    "Maintainer field of the packages: Name <address>")

# --- Install rules -----------------------------------------------------------------------

install(FILES "${_strictmx_top}/systemd/strictmx-policyd.service"
        DESTINATION "${STRICTMX_SYSTEMD_UNIT_DIR}")
install(FILES "${_strictmx_top}/systemd/strictmx-milter.service"
        DESTINATION "${STRICTMX_SYSTEMD_UNIT_DIR}")
install(FILES "${_strictmx_top}/systemd/strictmx-tlsrpt.service"
              "${_strictmx_top}/systemd/strictmx-tlsrpt.timer"
        DESTINATION "${STRICTMX_SYSTEMD_UNIT_DIR}")
install(FILES "${_strictmx_top}/systemd/strictmx.sysctl"
        DESTINATION "lib/sysctl.d" RENAME 50-strictmx.conf)
install(FILES "${_strictmx_top}/systemd/strictmx.sysusers"
        DESTINATION "${STRICTMX_SYSUSERS_DIR}" RENAME strictmx.conf)
install(FILES "${_strictmx_top}/systemd/strictmx.tmpfiles"
        DESTINATION "${STRICTMX_TMPFILES_DIR}" RENAME strictmx.conf)

install(FILES "${_strictmx_top}/man/strictmx.1" DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")
install(FILES "${_strictmx_top}/man/strictmx.toml.5" DESTINATION "${CMAKE_INSTALL_MANDIR}/man5")
install(FILES "${_strictmx_top}/man/strictmx-policyd.8" "${_strictmx_top}/man/strictmx-milter.8"
        DESTINATION "${CMAKE_INSTALL_MANDIR}/man8")

# The configuration: a conffile in the .deb, %config(noreplace) in the .rpm, so local
# changes survive upgrades.
install(FILES "${_strictmx_top}/contrib/strictmx.toml"
        DESTINATION "${STRICTMX_CONFIG_DIR}"
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# Documentation, under share/doc/strictmx.
set(_strictmx_docs
    "${_strictmx_top}/docs/cache-schema.md"
    "${_strictmx_top}/docs/tlsrpt-schema.md"
    "${_strictmx_top}/contrib/postfix/main.cf.strictmx")
file(GLOB _strictmx_postfix_milter "${_strictmx_top}/contrib/postfix/*milter*")
list(APPEND _strictmx_docs ${_strictmx_postfix_milter})
if(EXISTS "${_strictmx_top}/README.md")
  list(APPEND _strictmx_docs "${_strictmx_top}/README.md")
endif()
install(FILES ${_strictmx_docs} DESTINATION "${CMAKE_INSTALL_DOCDIR}")
install(FILES "${_strictmx_top}/contrib/postfix/README.md"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}" RENAME README.postfix.md)
file(GLOB _strictmx_exim "${_strictmx_top}/contrib/exim/*.conf")
if(_strictmx_exim)
  install(FILES ${_strictmx_exim} DESTINATION "${CMAKE_INSTALL_DOCDIR}/exim")
endif()

# --- CPack: common --------------------------------------------------------------------------

set(CPACK_PACKAGE_NAME "strictmx")
set(CPACK_PACKAGE_VENDOR "strictmx")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "${STRICTMX_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "DANE, MTA-STS, TLSRPT and REQUIRETLS for Postfix and Exim")
set(CPACK_PACKAGE_DESCRIPTION
    "strictmx-policyd answers Postfix smtp_tls_policy_maps lookups (socketmap
and tcp_table) with the TLS policy each destination domain publishes: DANE
(dane-only, dane) from DNSSEC-validated MX and TLSA records, else MTA-STS
(secure, with exact match names). DNS failures defer mail instead of
downgrading it. Policies are cached in SQLite. The strictmx tool explains
the answer for a domain and sends daily TLSRPT reports; strictmx-milter
adds REQUIRETLS and TLS-Required: No to Postfix 3.4 and later.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/var/")

# DEB always; RPM when rpmbuild is there (cpack fails for a generator it cannot run).
set(CPACK_GENERATOR "DEB")
find_program(STRICTMX_RPMBUILD rpmbuild)
if(STRICTMX_RPMBUILD)
  list(APPEND CPACK_GENERATOR "RPM")
endif()

# --- CPack: Debian --------------------------------------------------------------------------

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${STRICTMX_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION "mail")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# Debian 12 runtime libraries of the binaries, the DNSSEC root trust anchor, the CA bundle
# for policy fetches, and systemd-sysusers/systemd-tmpfiles for the maintainer scripts.
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libunbound8, libevent-2.1-7, libcurl4, libsqlite3-0, libidn2-0, libpsl5, libtomlplusplus3, libfmt9, libmilter1.0.1, libstdc++6, libc6, libgcc-s1, dns-root-data, ca-certificates, systemd")
# dpkg-shlibdeps (package dpkg-dev) adds exact library versions when it is installed.
find_program(STRICTMX_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(STRICTMX_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postfix (>= 3.4), sqlite3")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${_strictmx_pkg}/debian/conffiles"
    "${_strictmx_pkg}/debian/postinst"
    "${_strictmx_pkg}/debian/prerm"
    "${_strictmx_pkg}/debian/postrm")
# Maintainer scripts 0755, conffiles 0644, whatever the checkout's modes are.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

# --- CPack: RPM -----------------------------------------------------------------------------

set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_LICENSE "MIT")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
# Library dependencies come from rpm's automatic requirements; package names differ from
# Debian's. The trust anchor path /usr/share/dns/root.key is Debian's: on RPM-based
# systems set resolver.trust_anchor_file (for example to /var/lib/unbound/root.key).
set(CPACK_RPM_PACKAGE_AUTOREQ ON)
set(CPACK_RPM_PACKAGE_REQUIRES "ca-certificates, systemd")
set(CPACK_RPM_USER_FILELIST "%config(noreplace) ${STRICTMX_CONFIG_DIR}/strictmx.toml")
# Directories that belong to the system, not to this package.
list(APPEND CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
     /usr/lib/systemd /usr/lib/systemd/system /usr/lib/sysusers.d /usr/lib/tmpfiles.d /usr/lib/sysctl.d
     /usr/share/man/man1 /usr/share/man/man5 /usr/share/man/man8)
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE "${_strictmx_pkg}/rpm/post.sh")
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE "${_strictmx_pkg}/rpm/preun.sh")
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE "${_strictmx_pkg}/rpm/postun.sh")

include(CPack)
