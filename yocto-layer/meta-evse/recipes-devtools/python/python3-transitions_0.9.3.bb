SUMMARY = "A lightweight, object-oriented finite state machine implementation in Python"
DESCRIPTION = "State machines with hierarchical states and callbacks; the connector state \
machines of the evse stack. Newer than scarthgap's because evse needs >= 0.9.2."
HOMEPAGE = "https://github.com/pytransitions/transitions"
SECTION = "devel/python"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=de0a0876a688a4483bfafa764773ab39"

SRC_URI[sha256sum] = "881fb75bb1654ed55d86060bb067f2c716f8e155f57bb73fd444e53713aafec8"

inherit pypi python_setuptools_build_meta

RDEPENDS:${PN} = " \
    python3-core \
    python3-logging \
    python3-six \
"

BBCLASSEXTEND = "native nativesdk"
