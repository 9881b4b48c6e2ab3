# Run by `cmake --install` (and CPack) with the prefix in effect then: places
# the configuration and the systemd unit by GNUInstallDirs' rules, and writes
# into the unit where the binary, configuration and documentation went.
set(prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "(.)/+$" "\\1" prefix "${prefix}")

function(brickwork_absolute out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
brickwork_absolute(bindir "${BRICKWORK_BINDIR}")
brickwork_absolute(docdir "${BRICKWORK_DOCDIR}")
# GNUInstallDirs: /usr's configuration is /etc, /opt/X's is /etc/opt/X.
if(IS_ABSOLUTE "${BRICKWORK_SYSCONFDIR}")
  set(sysconfdir "${BRICKWORK_SYSCONFDIR}")
elseif(prefix STREQUAL "/usr")
  set(sysconfdir "/${BRICKWORK_SYSCONFDIR}")
elseif(prefix MATCHES "^/opt/")
  set(sysconfdir "/${BRICKWORK_SYSCONFDIR}${prefix}")
else()
  set(sysconfdir "${prefix}/${BRICKWORK_SYSCONFDIR}")
endif()
# Debian 12 ships units in /lib/systemd/system; elsewhere under the prefix.
if(BRICKWORK_SYSTEMD_UNITDIR)
  set(unitdir "${BRICKWORK_SYSTEMD_UNITDIR}")
elseif(prefix STREQUAL "/usr")
  set(unitdir "/lib/systemd/system")
else()
  set(unitdir "${prefix}/lib/systemd/system")
endif()

file(INSTALL "${BRICKWORK_SOURCE_DIR}/config/examples/brickwork.yaml"
     DESTINATION "${sysconfdir}/brickwork")
file(INSTALL "${BRICKWORK_SOURCE_DIR}/config/examples/workflows.d"
     DESTINATION "${sysconfdir}/brickwork")

file(READ "${BRICKWORK_SOURCE_DIR}/systemd/brickwork.service" unit)
string(REPLACE "/usr/bin/brickwork" "${bindir}/brickwork" unit "${unit}")
string(REPLACE "/etc/brickwork" "${sysconfdir}/brickwork" unit "${unit}")
string(REPLACE "/usr/share/doc/brickwork" "${docdir}" unit "${unit}")
file(WRITE "${BRICKWORK_STAGING_DIR}/brickwork.service" "${unit}")
file(INSTALL "${BRICKWORK_STAGING_DIR}/brickwork.service" DESTINATION "${unitdir}")
