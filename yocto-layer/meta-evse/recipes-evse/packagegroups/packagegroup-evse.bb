SUMMARY = "The evse charge point firmware and the tools a technician uses with it"
DESCRIPTION = "The evse daemon with its systemd unit, configuration and rules, plus CAN and \
network tools for commissioning. Add it to an image with IMAGE_INSTALL:append."
LICENSE = "MIT"

inherit packagegroup

RDEPENDS:${PN} = " \
    can-utils \
    evse \
    iproute2 \
"
# Optional, when the image has them: polkit lets evse reboot the board (OCPP Reset Hard);
# rauc or swupdate install firmware images (OCPP UpdateFirmware).
RRECOMMENDS:${PN} = " \
    evse-doc \
"
