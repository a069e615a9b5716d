SUMMARY = "An implementation of the WebSocket Protocol (RFC 6455 and 7692)"
DESCRIPTION = "Library for building WebSocket servers and clients with asyncio; the CSMS link \
of the evse stack. Backport: scarthgap (openembedded-core) has 12.0, evse needs >= 13."
HOMEPAGE = "https://github.com/python-websockets/websockets"
SECTION = "devel/python"
LICENSE = "BSD-3-Clause"
LIC_FILES_CHKSUM = "file://LICENSE;md5=51924a6af4495b8cfaee1b1da869b6f4"

SRC_URI[sha256sum] = "a3b3366087c1bc0a2795111edcadddb8b3b59509d5db5d7ea3fdd69f954a8878"

inherit pypi python_setuptools_build_meta

RDEPENDS:${PN} = " \
    python3-asyncio \
    python3-core \
    python3-netclient \
"

BBCLASSEXTEND = "native nativesdk"
