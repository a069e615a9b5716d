SUMMARY = "Python binding of lgpio (Linux gpiochip GPIO)"
DESCRIPTION = "The lgpio module that gpiozero's lgpio pin factory imports; a SWIG binding \
of liblgpio. Not in openembedded-core or meta-openembedded."
HOMEPAGE = "https://github.com/joan2937/lg"
SECTION = "devel/python"
LICENSE = "Unlicense"
LIC_FILES_CHKSUM = "file://LICENSE;md5=61287f92700ec1bdf13bc86d8228cd13"

DEPENDS += "lgpio swig-native"

# Tag v0.2.2 of the upstream repository (the same source as lgpio).
SRC_URI = "git://github.com/joan2937/lg.git;protocol=https;branch=master"
SRCREV = "b959a17d723360e85648316757b02dbea9902feb"

S = "${WORKDIR}/git/PY_LGPIO"

inherit setuptools3

# The binding is generated from lgpio.i, as upstream's Makefile does before setup.py.
do_configure:prepend() {
    swig -python -I${STAGING_INCDIR} -o ${S}/lgpio_wrap.c ${S}/lgpio.i
}

RDEPENDS:${PN} = " \
    lgpio \
    python3-core \
"
