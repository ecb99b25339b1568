"""The reference firmware: the C core (core/), its ports, and the tools that build and
launch them (launch.py, figures.py). Shipped with the package so that the simulator can
build the core it runs (sim_device/core_build.py)."""
