SUMMARY = "lgpio: Linux GPIO, SPI, I2C and serial library (liblgpio)"
DESCRIPTION = "C library for GPIO through the Linux gpiochip character device, with \
software-timed PWM; the backend of gpiozero's lgpio pin factory. Not in \
openembedded-core or meta-openembedded."
HOMEPAGE = "https://github.com/joan2937/lg"
SECTION = "libs"
LICENSE = "Unlicense"
LIC_FILES_CHKSUM = "file://UNLICENCE;md5=61287f92700ec1bdf13bc86d8228cd13"

# Tag v0.2.2 of the upstream repository.
SRC_URI = "git://github.com/joan2937/lg.git;protocol=https;branch=master"
SRCREV = "b959a17d723360e85648316757b02dbea9902feb"

S = "${WORKDIR}/git"

# Only the library: the Makefile's install target also builds the rgpiod daemon and runs
# setup.py for the Python modules (python3-lgpio builds those).
do_compile() {
    oe_runmake CC="${CC}" SHLIB="${CC} -shared" STRIP=true STRIPLIB=true SIZE=true \
        LDFLAGS="${LDFLAGS}" liblgpio.so
}

do_install() {
    install -d ${D}${includedir} ${D}${libdir}
    install -m 0644 ${S}/lgpio.h ${D}${includedir}/
    install -m 0755 ${S}/liblgpio.so.1 ${D}${libdir}/
    ln -sf liblgpio.so.1 ${D}${libdir}/liblgpio.so
}
