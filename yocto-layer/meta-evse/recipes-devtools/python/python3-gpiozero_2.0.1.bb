SUMMARY = "A simple interface to GPIO devices"
DESCRIPTION = "GPIO device abstraction with pluggable pin factories (lgpio, RPi.GPIO, mock); \
drives contactors, RCD inputs and locks on Raspberry Pi class boards. Not in \
meta-openembedded (its colorzero dependency is, in meta-python)."
HOMEPAGE = "https://github.com/gpiozero/gpiozero"
SECTION = "devel/python"
LICENSE = "BSD-3-Clause"
LIC_FILES_CHKSUM = "file://LICENSE.rst;md5=f7edfe7aeac02cb6c394726db07eb41c"

SRC_URI[sha256sum] = "d4ea1952689ec7e331f9d4ebc9adb15f1d01c2c9dcfabb72e752c9869ab7e97e"

inherit pypi python_setuptools_build_meta

RDEPENDS:${PN} = " \
    python3-colorzero \
    python3-core \
    python3-threading \
"
# The pin factory for any gpiochip board (Raspberry Pi 5 included), and SPI ADCs.
RRECOMMENDS:${PN} = " \
    python3-lgpio \
    python3-spidev \
"

BBCLASSEXTEND = "native nativesdk"
