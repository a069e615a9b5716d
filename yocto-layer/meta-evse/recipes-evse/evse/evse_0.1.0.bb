SUMMARY = "Charge point firmware for embedded Linux EVSE controllers"
# No HOMEPAGE: the project has no public home page yet (set it once it has one; the
# layer check suppresses oelint.var.mandatoryvar.HOMEPAGE until then).
DESCRIPTION = "IEC 61851 connector control and OCPP 1.6J for charge point controller boards, \
run as the systemd service evse.service with a safety-gated watchdog."
SECTION = "net"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

# Built from the checkout this layer lives in by default; for a product build point this at
# your mirror and pin the revision in local.conf or a bbappend:
#   EVSE_GIT_URI = "git://git.example.com/evse.git;protocol=https;branch=main"
#   SRCREV:pn-evse = "<commit>"
PV .= "+git"
EVSE_GIT_URI ??= "git://${EVSE_SRC_DIR};protocol=file;branch=main"
SRC_URI = "${EVSE_GIT_URI}"
# The in-tree layer builds whatever is committed on the branch; products pin SRCREV.
# nooelint: oelint.vars.autorev
SRCREV ??= "${AUTOREV}"

S = "${WORKDIR}/git"

# pyproject.toml: build-backend = "setuptools.build_meta".
inherit python_setuptools_build_meta systemd useradd

# scarthgap ships setuptools 69, which predates PEP 639 (license = "SPDX" strings, setuptools
# >= 77). Build with it by giving the license in the older table form.
do_configure:prepend() {
    sed -i -e 's/"setuptools>=[0-9.]*"/"setuptools>=69"/' \
        -e 's/^license = "\(.*\)"$/license = {text = "\1"}/' \
        ${S}/pyproject.toml
}

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
# the same SupplementaryGroups=); dialout comes with base-passwd.
USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system evse; --system gpio; --system spi"
USERADD_PARAM:${PN} = "--system --home-dir ${localstatedir}/lib/evse --no-create-home \
                       --shell /sbin/nologin --gid evse --groups gpio,spi,dialout evse"

CONFFILES:${PN} = "${sysconfdir}/evse/evse.toml"

FILES:${PN} += "${datadir}/polkit-1/rules.d \
                ${nonarch_base_libdir}/udev/rules.d \
                ${systemd_system_unitdir}/evse.service"

# Every runtime dependency of pyproject.toml [project] dependencies (kept in step by
# tests/ship/test_yocto_layer.py), then the standard library modules the stack imports
# (tomllib, sqlite3, asyncio, ssl, ...: the whole set, simplest to keep right).
RDEPENDS:${PN} = " \
    python3-can \
    python3-cryptography \
    python3-gpiozero \
    python3-jsonschema \
    python3-modules \
    python3-ocpp \
    python3-pymodbus \
    python3-pyserial \
    python3-transitions \
    python3-websockets \
"
