# SPDX-License-Identifier: MIT
# CPACK_PRE_BUILD_SCRIPTS: runs after CPack installed the files into its staging tree and
# before it builds a package from them. Adds what one package format alone needs.

if(CPACK_GENERATOR STREQUAL "DEB")
  # Debian policy 12.7: the Debian changelog, gzip -9n, as changelog.Debian.gz (a package
  # with a Debian revision). The staging tree holds the files under the packaging prefix.
  set(_doc "${CPACK_TEMPORARY_INSTALL_DIRECTORY}${CPACK_PACKAGING_INSTALL_PREFIX}/share/doc/${CPACK_PACKAGE_NAME}")
  if(NOT IS_DIRECTORY "${_doc}")
    message(FATAL_ERROR "cpack-prebuild: no ${_doc} in the staging tree")
  endif()
  execute_process(COMMAND gzip -9n -c "${CPACK_STRICTMX_DEBIAN_DIR}/changelog"
                  OUTPUT_FILE "${_doc}/changelog.Debian.gz" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "cpack-prebuild: gzip of debian/changelog failed")
  endif()
  file(CHMOD "${_doc}/changelog.Debian.gz" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
