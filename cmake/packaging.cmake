# SPDX-License-Identifier: MIT
# Install rules (`cmake --install`) and the Debian package (`cpack -G DEB`
# in a build configured with -DCMAKE_INSTALL_PREFIX=/usr; see
# deploy/package-test.sh). Included from the top CMakeLists.txt.
include(GNUInstallDirs)

# Where the unit goes. Debian 12 packages keep units in /lib/systemd/system
# (moving them to /usr/lib on a merged-/usr system is the DEP17 trap); any
# other prefix keeps it under the prefix, so a staged or /usr/local install
# writes nothing outside it.
if(NOT NETWORKD_SYSTEMD_UNITDIR)
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(NETWORKD_SYSTEMD_UNITDIR /lib/systemd/system)
  else()
    set(NETWORKD_SYSTEMD_UNITDIR lib/systemd/system)
  endif()
endif()
# /etc/default for prefix /usr (GNUInstallDirs maps its sysconfdir to /etc),
# PREFIX/etc/default otherwise (relative, so it follows --prefix).
set(networkd_envdir ${CMAKE_INSTALL_FULL_SYSCONFDIR}/default)
if(IS_ABSOLUTE ${CMAKE_INSTALL_SYSCONFDIR} OR CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(networkd_envdir_install ${networkd_envdir})
else()
  set(networkd_envdir_install ${CMAKE_INSTALL_SYSCONFDIR}/default)
endif()

# The unit in deploy/ names the paths of the package (/usr/sbin/networkd,
# /etc/default/networkd, /usr/share/doc/networkd); the installed copy names
# this build's. A unit whose lines no longer match fails the configure
# rather than installing a unit that starts nothing.
set(unit_src ${PROJECT_SOURCE_DIR}/deploy/networkd.service)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${unit_src})
file(READ ${unit_src} unit_text)
foreach(pair
    "ExecStart=/usr/sbin/networkd |ExecStart=${CMAKE_INSTALL_FULL_SBINDIR}/networkd "
    "EnvironmentFile=-/etc/default/networkd\n|EnvironmentFile=-${networkd_envdir}/networkd\n"
    "file:///usr/share/doc/networkd/|file://${CMAKE_INSTALL_FULL_DOCDIR}/")
  string(REPLACE "|" ";" pair "${pair}")
  list(GET pair 0 from)
  list(GET pair 1 to)
  string(FIND "${unit_text}" "${from}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "deploy/networkd.service: no \"${from}\" to adapt "
                        "to the install paths (cmake/packaging.cmake)")
  endif()
  string(REPLACE "${from}" "${to}" unit_text "${unit_text}")
endforeach()
file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/deploy/networkd.service
     CONTENT "${unit_text}")

# The man page, compressed as Debian wants it (-n: no name or time stamp,
# so equal sources give equal packages).
set(man_src ${PROJECT_SOURCE_DIR}/docs/networkd.8)
set(man_gz ${PROJECT_BINARY_DIR}/docs/networkd.8.gz)
add_custom_command(OUTPUT ${man_gz}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/docs
  COMMAND gzip -9n -c ${man_src} > ${man_gz}
  DEPENDS ${man_src} VERBATIM)
add_custom_target(networkd_man ALL DEPENDS ${man_gz})

install(TARGETS networkd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(FILES ${PROJECT_BINARY_DIR}/deploy/networkd.service
        DESTINATION ${NETWORKD_SYSTEMD_UNITDIR})
install(FILES ${PROJECT_SOURCE_DIR}/deploy/networkd.env
        DESTINATION ${networkd_envdir_install} RENAME networkd)
install(FILES ${man_gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
# Debian wants every package to carry its licence as doc/copyright and, a
# native package, its history as doc/changelog.gz (deploy/debian/).
set(changelog_gz ${PROJECT_BINARY_DIR}/deb/changelog.gz)
add_custom_command(OUTPUT ${changelog_gz}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/deb
  COMMAND gzip -9n -c ${PROJECT_SOURCE_DIR}/deploy/debian/changelog
          > ${changelog_gz}
  DEPENDS ${PROJECT_SOURCE_DIR}/deploy/debian/changelog VERBATIM)
add_custom_target(networkd_changelog ALL DEPENDS ${changelog_gz})
install(FILES ${PROJECT_SOURCE_DIR}/deploy/debian/copyright ${changelog_gz}
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/LICENSE
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# --- cpack -G DEB ------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME networkd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "The networkd authors")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "per-node network daemon: VIPs, cluster DNS and resolv.conf from etcd")
set(CPACK_PACKAGE_DESCRIPTION
"networkd runs on every node of a LAIN-style container cluster. It reads
the cluster's intent from etcd (v3 API) and makes the node match it:
floating IPs (VIPs) with their DNAT rules for the apps whose containers
run on the node, a DNS server for the cluster's names that forwards the
rest, and /etc/resolv.conf pointing at itself. The service is installed
but neither enabled nor started: set the flags in /etc/default/networkd,
then run systemctl enable --now networkd.")
set(NETWORKD_DEB_MAINTAINER
    "The networkd authors <networkd-maintainers@example.org>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_PACKAGE_CONTACT "${NETWORKD_DEB_MAINTAINER}")
# The package's paths are the ones configured (see the unit above);
# cmake/cpack-options.cmake refuses a .deb built for another prefix than /usr.
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_SOURCE_DIR}/cmake/cpack-options.cmake)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Shared libraries by dpkg-shlibdeps; iptables-restore and iptables-save
# are run as programs (DNAT and ACL chains), so they are named by hand.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "iptables")
# /etc/default/networkd is the operator's: upgrades keep their edits, purge
# removes it.
set(networkd_conffiles ${PROJECT_BINARY_DIR}/deb/conffiles)
file(GENERATE OUTPUT ${networkd_conffiles}
     CONTENT "${networkd_envdir}/networkd\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${networkd_conffiles})
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
