"""Simulation studies: the host library's procedure run on the simulator, many times over,
and judged from the simulator's truth. They use both ``firmware_host`` and
``sim_device`` and sit above them; neither imports them (needlectl's ``sim sweep``
loads the sweep lazily, as it starts the simulator).

``judge`` (the one safety judge), ``cohort`` (the cohort-2021 study behind
benchmarks/cohort.py), ``sweep`` (lesions × seeds × noise × profiles into one table:
``needlectl sim sweep``, benchmarks/sweep.py).
"""
