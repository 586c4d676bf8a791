"""The virtual meter: profiles, the meter state machine, the wire model and its transports.

Importing this package registers the ``me162://`` URL scheme with pyserial, so that
``serial.serial_for_url("me162://?profile=me162&speed=50")`` opens a virtual meter.
"""

import serial

if "me162.simulator" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("me162.simulator")
