"""The software device: rig + firmware simulated on a virtual clock.

Importing this package registers the ``sim://`` URL scheme with pyserial
(``serial.serial_for_url("sim://?lesion=...&seed=...")``). The import stays light:
the simulator itself is loaded when a port is opened.
"""

import serial

if "sim_device" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("sim_device")
