SUMMARY = "Open Charge Point Protocol (OCPP-J 1.6, 2.0.1) for Python"
DESCRIPTION = "Python implementation of the JSON version of the Open Charge Point Protocol, \
charge point and central system sides, with message schema validation. Not in \
meta-openembedded. 2.0.0 because 2.1.0 needs jsonschema >= 4.23 and scarthgap has 4.21.1."
HOMEPAGE = "https://github.com/mobilityhouse/ocpp"
SECTION = "devel/python"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=357da596bd4bc9004894e2feaaa1e975"

# Tag 2.0.0 of the upstream repository.
SRC_URI = "git://github.com/mobilityhouse/ocpp.git;protocol=https;branch=master \
           file://0001-pyproject.toml-build-with-poetry-core.patch \
"
SRCREV = "bd7a55545518df83f5f47f4d984bdb199e2861ed"

S = "${WORKDIR}/git"

inherit python_poetry_core

RDEPENDS:${PN} = " \
    python3-asyncio \
    python3-json \
    python3-jsonschema \
    python3-logging \
"

BBCLASSEXTEND = "native nativesdk"
