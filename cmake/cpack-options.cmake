# SPDX-License-Identifier: MIT
# Read by cpack (CPACK_PROJECT_CONFIG_FILE). The unit and the conffile list
# carry the paths chosen at configure time: a .deb of a tree configured for
# /usr/local would install a unit whose ExecStart= points outside the
# package's /usr/sbin. Refuse it instead.
if(CPACK_GENERATOR STREQUAL "DEB"
   AND NOT CPACK_PACKAGING_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR
    "networkd: the .deb needs a build configured with "
    "-DCMAKE_INSTALL_PREFIX=/usr (this one: ${CPACK_PACKAGING_INSTALL_PREFIX})")
endif()
