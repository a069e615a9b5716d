SUMMARY = "Charge point firmware for embedded Linux EVSE controllers"
# No HOMEPAGE: the project has no public home page yet (set it once it has one; the
# layer check suppresses oelint.var.mandatoryvar.HOMEPAGE until then).
DESCRIPTION = "IEC 61851 connector control and OCPP 1.6J for charge point controller boards, \
run as the systemd service evse.service with a safety-gated watchdog."
SECTION = "net"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

# Built from the checkout this layer lives in, at a pinned commit (the one this layer was
# last checked against; a release bumps it). For a product build point this at your mirror
# and pin your release in local.conf or a bbappend:
#   EVSE_GIT_URI = "git://git.example.com/evse.git;protocol=https;branch=main"
#   SRCREV:pn-evse = "<commit>"
PV .= "+git"
EVSE_GIT_URI ??= "git://${EVSE_SRC_DIR};protocol=file;branch=main"
SRC_URI = "${EVSE_GIT_URI} \
           file://0001-pyproject.toml-build-with-scarthgap-s-setuptools-69.patch \
           file://run-ptest \
"
SRCREV = "77c94b477cbffb62c5fe00975fb59b40ecdfddad"

S = "${WORKDIR}/git"

# pyproject.toml: build-backend = "setuptools.build_meta".
inherit python_setuptools_build_meta systemd useradd ptest

do_install:append() {
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/systemd/evse.service ${D}${systemd_system_unitdir}/evse.service

    # The example configuration with the paths systemd gives the service (StateDirectory,
    # RuntimeDirectory); a conffile, so an upgrade never replaces the technician's edits.
    install -d -m 0750 ${D}${sysconfdir}/evse
    sed -e 's|^state_dir = .*|state_dir = "${localstatedir}/lib/evse"|' \
        -e 's|^control_socket = .*|control_socket = "/run/evse/control.sock"|' \
        ${S}/config/evse.toml >${D}${sysconfdir}/evse/evse.toml
    chmod 0640 ${D}${sysconfdir}/evse/evse.toml
    chown -R root:evse ${D}${sysconfdir}/evse

    install -d ${D}${nonarch_base_libdir}/udev/rules.d
    install -m 0644 ${S}/systemd/60-evse.rules ${D}${nonarch_base_libdir}/udev/rules.d/60-evse.rules

    install -d ${D}${datadir}/polkit-1/rules.d
    install -m 0644 ${S}/systemd/evse-reboot.rules ${D}${datadir}/polkit-1/rules.d/50-evse-reboot.rules

    install -d ${D}${docdir}/evse
    install -m 0644 ${S}/docs/deploy.md ${S}/docs/configuration.md ${D}${docdir}/evse/
}

SYSTEMD_SERVICE:${PN} = "evse.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

# The daemon's system user: device access through gpio, spi and dialout (evse.service sets
# the same SupplementaryGroups=); dialout comes with base-passwd. Technicians join evse
# (evse status, evse config check) or also evse-admin (evse fault reset, evse sim).
USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system evse; --system evse-admin; --system gpio; --system spi"
USERADD_PARAM:${PN} = "--system --home-dir ${localstatedir}/lib/evse --no-create-home \
                       --shell /sbin/nologin --gid evse --groups gpio,spi,dialout evse"

CONFFILES:${PN} = "${sysconfdir}/evse/evse.toml"

FILES:${PN} += "${datadir}/polkit-1/rules.d \
                ${nonarch_base_libdir}/udev/rules.d \
                ${systemd_system_unitdir}/evse.service"

# evse-ptest: the test suite, run on the target by ptest-runner (run-ptest says what is left
# out and why). scarthgap has pytest 8.0.2, pytest-asyncio 0.23.6, hypothesis 6.98.15.
do_install_ptest() {
    install -d ${D}${PTEST_PATH}/scripts
    cp -r ${S}/tests ${D}${PTEST_PATH}/
    rm -rf ${D}${PTEST_PATH}/tests/ship
    install -m 0644 ${S}/pyproject.toml ${D}${PTEST_PATH}/
    install -m 0644 ${S}/scripts/dev_csms.py ${S}/scripts/gen_state_diagram.py \
        ${D}${PTEST_PATH}/scripts/
    install -d ${D}${PTEST_PATH}/config ${D}${PTEST_PATH}/docs
    cp -r ${S}/config/. ${D}${PTEST_PATH}/config/
    cp -r ${S}/docs/. ${D}${PTEST_PATH}/docs/
}

RDEPENDS:${PN}-ptest += "python3-hypothesis python3-packaging python3-pytest \
                         python3-pytest-asyncio python3-unittest-automake-output"

# Every runtime dependency of pyproject.toml [project] dependencies, the pin factory's
# libraries (lgpio: the default pin_factory; spidev: hardware SPI for pilot ADCs), then the
# standard library packages (python3-manifest.json) of the modules the stack imports.
# tests/ship/test_yocto_layer.py keeps both lists in step with the code.
RDEPENDS:${PN} = " \
    python3-asyncio \
    python3-can \
    python3-compression \
    python3-core \
    python3-crypt \
    python3-cryptography \
    python3-datetime \
    python3-difflib \
    python3-gpiozero \
    python3-io \
    python3-json \
    python3-jsonschema \
    python3-lgpio \
    python3-logging \
    python3-netclient \
    python3-ocpp \
    python3-pymodbus \
    python3-pyserial \
    python3-spidev \
    python3-sqlite3 \
    python3-statistics \
    python3-stringold \
    python3-threading \
    python3-tomllib \
    python3-transitions \
    python3-websockets \
"
