# SPDX-License-Identifier: MIT
# Packaging: install rules for the operator files and CPack settings for .deb and .rpm.
# Included at the end of the top-level CMakeLists.txt, after the targets exist:
#
#   include(${PROJECT_SOURCE_DIR}/contrib/packaging/strictmx.cpack.cmake)
#
# Build packages with `cmake --build BUILD_DIR --target package` (see README.md here), in a
# release build directory configured with Debian's hardening flags:
#
#   export DEB_BUILD_MAINT_OPTIONS=hardening=+all
#   CXXFLAGS="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS)" \
#   LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
#   cmake -S . -B build-release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF
#
# (_FORTIFY_SOURCE=2, -fstack-protector-strong, -Wformat -Werror=format-security,
# -Wl,-z,relro -Wl,-z,now; PIE is the compiler's default on Debian.) CMake reads CXXFLAGS
# and LDFLAGS only when it creates the build directory. tests/packaging/t_packages.sh
# builds the packages this way and checks them with lintian and rpmlint.
# The binaries themselves are installed by policyd/ and milter/CMakeLists.txt.

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
set(STRICTMX_HOMEPAGE_URL "https://strictmx.invalid/" CACHE STRING
    "Homepage (.deb) and URL (.rpm) of the packages")

# --- Install rules -----------------------------------------------------------------------

install(FILES "${_strictmx_top}/systemd/strictmx-policyd.service"
        DESTINATION "${STRICTMX_SYSTEMD_UNIT_DIR}")
install(FILES "${_strictmx_top}/systemd/strictmx-policyd.socket"
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
# Compressed in place, as Debian policy and the RPM distributions want them: gzip -9n (no
# name, no time stamp: the same bytes at every build). man(1) reads them either way.
set(_strictmx_man_pages man1/strictmx.1 man5/strictmx.toml.5 man8/strictmx-policyd.8
    man8/strictmx-milter.8)
install(CODE "
  foreach(_page ${_strictmx_man_pages})
    set(_f \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_MANDIR}/\${_page}\")
    execute_process(COMMAND gzip -9nf \"\${_f}\" RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR \"gzip -9nf \${_f} failed\")
    endif()
  endforeach()")

# The configuration: a conffile in the .deb, %config(noreplace) in the .rpm, so local
# changes survive upgrades. 0640: readable by root and the group _strictmx only. The .rpm
# sets the group (%attr); the .deb's postinst does (the group does not exist before);
# after `cmake --install`: chgrp _strictmx /etc/strictmx/strictmx.toml.
install(FILES "${_strictmx_top}/contrib/strictmx.toml"
        DESTINATION "${STRICTMX_CONFIG_DIR}"
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)

# Documentation, under share/doc/strictmx.
set(_strictmx_docs
    "${_strictmx_top}/docs/cache-schema.md"
    "${_strictmx_top}/docs/tlsrpt-schema.md"
    "${_strictmx_top}/docs/fleet-schema.md"
    "${_strictmx_top}/contrib/postfix/main.cf.strictmx")
file(GLOB _strictmx_postfix_milter "${_strictmx_top}/contrib/postfix/*milter*")
list(APPEND _strictmx_docs ${_strictmx_postfix_milter})
if(EXISTS "${_strictmx_top}/README.md")
  list(APPEND _strictmx_docs "${_strictmx_top}/README.md")
endif()
install(FILES ${_strictmx_docs} DESTINATION "${CMAKE_INSTALL_DOCDIR}")
install(FILES "${_strictmx_top}/contrib/postfix/README.md"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}" RENAME README.postfix.md)
install(FILES "${_strictmx_pkg}/README.md"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}" RENAME README.packaging.md)
# Exim: the README, the four snippets, and Debian's split configuration (debian/conf.d/,
# the paths the README's cp commands use, relative to the exim/ directory).
file(GLOB _strictmx_exim "${_strictmx_top}/contrib/exim/*.conf")
if(_strictmx_exim)
  install(FILES ${_strictmx_exim} "${_strictmx_top}/contrib/exim/README.md"
          DESTINATION "${CMAKE_INSTALL_DOCDIR}/exim")
  install(DIRECTORY "${_strictmx_top}/contrib/exim/debian"
          DESTINATION "${CMAKE_INSTALL_DOCDIR}/exim")
endif()
# The license, in Debian's machine-readable copyright format (the .rpm marks it %license).
install(FILES "${_strictmx_pkg}/debian/copyright" DESTINATION "${CMAKE_INSTALL_DOCDIR}")

# --- CPack: common --------------------------------------------------------------------------

set(CPACK_PACKAGE_NAME "strictmx")
set(CPACK_PACKAGE_VENDOR "strictmx")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "${STRICTMX_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_HOMEPAGE_URL "${STRICTMX_HOMEPAGE_URL}")
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
# Not relocatable: the units, sysusers.d and tmpfiles.d files name /usr and /etc paths.
set(CPACK_PACKAGE_RELOCATABLE OFF)
# Per-generator files added to the staging tree before packaging (changelog.Debian.gz).
set(CPACK_PRE_BUILD_SCRIPTS "${_strictmx_pkg}/cpack-prebuild.cmake")
set(CPACK_STRICTMX_DEBIAN_DIR "${_strictmx_pkg}/debian")
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
# Debian revision 1: strictmx_VERSION-1_ARCH.deb, with /usr/share/doc/strictmx/changelog.Debian.gz
# from debian/changelog, whose first entry must carry this version.
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
file(STRINGS "${_strictmx_pkg}/debian/changelog" _strictmx_changelog_top LIMIT_COUNT 1)
if(NOT _strictmx_changelog_top MATCHES "^strictmx \\(${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}\\) ")
  message(WARNING "contrib/packaging/debian/changelog does not start with version "
                  "${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}: add an entry (lintian "
                  "reports the mismatch)")
endif()
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${STRICTMX_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION "mail")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# Library dependencies come from dpkg-shlibdeps (package dpkg-dev). On top: the DNSSEC root
# trust anchor, the CA bundle for policy fetches, and systemd-sysusers/systemd-tmpfiles
# for the maintainer scripts (deb-systemd-helper is in init-system-helpers, essential).
set(_strictmx_deb_extra_depends "dns-root-data, ca-certificates, systemd")
find_program(STRICTMX_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(STRICTMX_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "${_strictmx_deb_extra_depends}")
else()
  # Without dpkg-dev: Debian 12's names of the runtime libraries, unversioned.
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
      "libunbound8, libevent-2.1-7, libcurl4, libsqlite3-0, libidn2-0, libpsl5, libtomlplusplus3, libfmt9, libmilter1.0.1, libpq5, zlib1g, libstdc++6, libc6, libgcc-s1, ${_strictmx_deb_extra_depends}")
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
set(CPACK_RPM_PACKAGE_RELEASE 1)
set(CPACK_RPM_PACKAGE_LICENSE "MIT")
set(CPACK_RPM_PACKAGE_RELOCATABLE OFF)
# rpmbuild takes the Packager tag from the %packager macro.
set(CPACK_RPM_SPEC_MORE_DEFINE "%define packager ${STRICTMX_PACKAGE_MAINTAINER}")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
# Library dependencies come from rpm's automatic requirements; package names differ from
# Debian's. The trust anchor path /usr/share/dns/root.key is Debian's: %post seeds
# /var/lib/strictmx/root.key from unbound's /var/lib/unbound/root.key, or says how to
# create one.
set(CPACK_RPM_PACKAGE_AUTOREQ ON)
set(CPACK_RPM_PACKAGE_REQUIRES "ca-certificates, systemd")
set(CPACK_RPM_USER_FILELIST
    "%config(noreplace) %attr(0640,root,_strictmx) ${STRICTMX_CONFIG_DIR}/strictmx.toml"
    "%license /usr/${CMAKE_INSTALL_DOCDIR}/copyright")
# Directories that belong to the system (filesystem, systemd, man-db), not to this package.
list(APPEND CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
     /usr/sbin /usr/lib/systemd /usr/lib/systemd/system /usr/lib/sysusers.d /usr/lib/tmpfiles.d
     /usr/lib/sysctl.d /usr/share/man /usr/share/man/man1 /usr/share/man/man5 /usr/share/man/man8)
# %pre creates the user from the sysusers.d lines, so the configuration's group exists when
# rpm lays the files down.
file(STRINGS "${_strictmx_top}/systemd/strictmx.sysusers" _strictmx_sysusers_lines
     REGEX "^[ugmr] ")
list(JOIN _strictmx_sysusers_lines "\n" STRICTMX_SYSUSERS_LINES)
configure_file("${_strictmx_pkg}/rpm/pre.sh.in" "${CMAKE_BINARY_DIR}/rpm-pre.sh" @ONLY)
set(CPACK_RPM_PRE_INSTALL_SCRIPT_FILE "${CMAKE_BINARY_DIR}/rpm-pre.sh")
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE "${_strictmx_pkg}/rpm/post.sh")
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE "${_strictmx_pkg}/rpm/preun.sh")
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE "${_strictmx_pkg}/rpm/postun.sh")

include(CPack)
