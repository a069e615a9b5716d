SUMMARY = "Open Charge Point Protocol (OCPP-J 1.6, 2.0.1, 2.1) for Python"
DESCRIPTION = "Python implementation of the JSON version of the Open Charge Point Protocol, \
charge point and central system sides, with message schema validation."
HOMEPAGE = "https://github.com/mobilityhouse/ocpp"
SECTION = "devel/python"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=357da596bd4bc9004894e2feaaa1e975"

SRC_URI[sha256sum] = "d29bfafb7161f75a78314f5cfd1b82fdf155082cd0f4de48c4dc8e5741422cf0"

inherit pypi python_poetry_core

# ocpp asks for poetry-core >= 2, scarthgap has 1.9; its pyproject only uses [tool.poetry],
# which poetry-core 1.x builds the same way.
do_configure:prepend() {
    sed -i -e 's/"poetry-core>=2[^"]*"/"poetry-core>=1.0"/' ${S}/pyproject.toml
}

RDEPENDS:${PN} = " \
    python3-asyncio \
    python3-json \
    python3-jsonschema \
    python3-logging \
"

BBCLASSEXTEND = "native nativesdk"
