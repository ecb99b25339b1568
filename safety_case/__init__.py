"""The safety case kept by the tests (issue 19).

The hazard analysis lives as data in docs/safety/ (a doorstop tree: HAZ-* hazards, RC-*
risk controls linked to them). Tests carry the ids of the controls they verify
(``@pytest.mark.control("RC-FORCELIMIT")``, see ``safety_case.plugin``), which pytest
writes into the JUnit XML of the run. ``python -m safety_case`` (``make safety``) joins
the two into a traceability matrix and fails when a control has no test that ran and
passed.
"""

CONTROL_MARKER = "control"
CONTROL_PROPERTY = "control"
