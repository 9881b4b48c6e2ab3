# Installation (GNUInstallDirs) and the Debian package (CPack's DEB generator,
# built by scripts/package.sh). Included from the top CMakeLists.txt.
#   cmake -DCMAKE_INSTALL_PREFIX=/usr ... && cmake --install build/release
#   cmake --install build/release --prefix /usr      (the same places)
include(GNUInstallDirs)
# Installing (and cpack) needs the program alone, not every test program of
# `all`: scripts/package.sh builds the target `brickwork` first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS brickwork RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES packaging/debian/brickwork.sysusers DESTINATION lib/sysusers.d RENAME brickwork.conf)
install(FILES README.md packaging/debian/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
install(FILES config/examples/brickwork.yaml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(DIRECTORY config/examples/workflows.d DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES integrations/databricks/brickwork_job.py
              integrations/databricks/examples/notebook_task.py
              integrations/databricks/examples/count_lines_task.py
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/databricks)

# Debian's changelog of a native package: /usr/share/doc/brickwork/changelog.gz,
# compressed without a timestamp so the package is reproducible.
set(BRICKWORK_MAINTAINER "brickwork maintainers <maintainers@users.noreply.b-seed-9cf79495.example>"
    CACHE STRING "The Debian package's Maintainer")
set(CPACK_PACKAGE_CONTACT "${BRICKWORK_MAINTAINER}")
configure_file(packaging/debian/changelog.in debian/changelog @ONLY)
execute_process(COMMAND gzip -9n -c ${CMAKE_BINARY_DIR}/debian/changelog
                OUTPUT_FILE ${CMAKE_BINARY_DIR}/debian/changelog.gz COMMAND_ERROR_IS_FATAL ANY)
install(FILES ${CMAKE_BINARY_DIR}/debian/changelog.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The configuration and the systemd unit go where the prefix in effect at
# install time says (so `--prefix` is honoured), by GNUInstallDirs' rules:
# prefix /usr puts the configuration in /etc/brickwork and the unit in
# /lib/systemd/system, and the unit names the binary, configuration and
# documentation where they were installed.
install(CODE "
  set(BRICKWORK_SOURCE_DIR \"${CMAKE_SOURCE_DIR}\")
  set(BRICKWORK_STAGING_DIR \"${CMAKE_BINARY_DIR}/debian\")
  set(BRICKWORK_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(BRICKWORK_SYSCONFDIR \"${CMAKE_INSTALL_SYSCONFDIR}\")
  set(BRICKWORK_DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")
  set(BRICKWORK_SYSTEMD_UNITDIR \"${BRICKWORK_SYSTEMD_UNITDIR}\")")
install(SCRIPT packaging/install-deployment.cmake)

# ---- the Debian package
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME brickwork)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Kafka-driven Databricks workflows, with their state in Postgres")
set(CPACK_PACKAGE_DESCRIPTION "brickwork is a daemon that runs multi-step Databricks work for other
services: they produce workflow commands to a Kafka topic, brickwork starts
the Databricks jobs, SQL statements and other steps in order or in parallel,
keeps every workflow and step state in PostgreSQL and publishes each change
to a status topic. Several daemons share the load in one consumer group.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Libraries by dpkg-shlibdeps; useradd (passwd) for the user where
# systemd-sysusers is absent; /bin/kill (procps) for the unit's ExecReload.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd, procps")
# TLS to Databricks and Kafka verifies against the system's CA certificates.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
# `brickwork demo` starts a throwaway PostgreSQL server of its own.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql")
set(CPACK_STRIP_FILES ON)
# Absolute destinations (/etc, /lib/systemd/system) are installed under the
# staging directory as they are.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Every file under /etc is a conffile: dpkg keeps an administrator's edits.
file(GLOB_RECURSE brickwork_workflow_examples RELATIVE ${CMAKE_SOURCE_DIR}/config/examples
     CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/config/examples/workflows.d/*)
set(brickwork_conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/brickwork/brickwork.yaml\n")
foreach(f ${brickwork_workflow_examples})
  string(APPEND brickwork_conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/brickwork/${f}\n")
endforeach()
file(WRITE ${CMAKE_BINARY_DIR}/debian/conffiles "${brickwork_conffiles}")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/debian/conffiles
    ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
include(CPack)
