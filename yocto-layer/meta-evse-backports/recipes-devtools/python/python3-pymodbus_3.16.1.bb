SUMMARY = "A fully featured Modbus protocol stack in Python"
DESCRIPTION = "Modbus RTU/TCP client and server with asyncio; used for RS-485 and TCP energy \
meters. Backport: scarthgap (meta-python) has 3.6.7, evse needs >= 3.12.1."
HOMEPAGE = "https://github.com/pymodbus-dev/pymodbus"
SECTION = "devel/python"
LICENSE = "BSD-3-Clause"
LIC_FILES_CHKSUM = "file://LICENSE;md5=12a490c6cffa2e76a6df8aa1fa29e183"

SRC_URI[sha256sum] = "19e571826dff37860afc31c845c1fd2fb72acffca02a233506b32d94fa022c33"

inherit pypi python_setuptools_build_meta

RDEPENDS:${PN} = " \
    python3-asyncio \
    python3-core \
    python3-logging \
    python3-pyserial \
"

BBCLASSEXTEND = "native nativesdk"
