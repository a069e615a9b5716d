SUMMARY = "Controller Area Network interface library for Python (python-can)"
DESCRIPTION = "CAN bus access for Python: SocketCAN, virtual buses and many adapters; used \
for CAN energy meters. Newer than scarthgap's because evse needs >= 4.4."
HOMEPAGE = "https://github.com/hardbyte/python-can"
SECTION = "devel/python"
LICENSE = "LGPL-3.0-only"
LIC_FILES_CHKSUM = "file://LICENSE.txt;md5=e6a600fd5e1d9cbde2d983680233ad02"

PYPI_PACKAGE = "python_can"
SRC_URI[sha256sum] = "1c46c0935f39f7a9c3e76b03249af0580689ebf7a1844195e92f87257f009df5"

inherit pypi python_setuptools_build_meta

RDEPENDS:${PN} = " \
    python3-core \
    python3-ctypes \
    python3-logging \
    python3-msgpack \
    python3-packaging \
    python3-typing-extensions \
    python3-wrapt \
"

BBCLASSEXTEND = "native nativesdk"
