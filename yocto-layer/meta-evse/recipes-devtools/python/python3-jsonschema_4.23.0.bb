SUMMARY = "An implementation of JSON Schema validation for Python"
DESCRIPTION = "jsonschema validates JSON documents against JSON Schema drafts 3 to 2020-12. \
Newer than scarthgap's 4.21.1 because python3-ocpp needs >= 4.23."
HOMEPAGE = "https://github.com/python-jsonschema/jsonschema"
SECTION = "devel/python"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://COPYING;md5=7a60a81c146ec25599a3e1dabb8610a8"

SRC_URI[sha256sum] = "d71497fef26351a33265337fa77ffeb82423f3ea21283cd9467bb03999266bc4"

inherit pypi python_hatchling

DEPENDS += "python3-hatch-fancy-pypi-readme-native python3-hatch-vcs-native"

RDEPENDS:${PN} = " \
    python3-attrs \
    python3-core \
    python3-json \
    python3-jsonschema-specifications \
    python3-referencing \
    python3-rpds-py \
"

BBCLASSEXTEND = "native nativesdk"
