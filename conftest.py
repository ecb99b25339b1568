"""Repository-wide pytest set-up."""

import os

from hypothesis import settings

# No example database: a database left by an earlier edit of a test replays examples that
# no longer fit it (FlakyStrategyDefinition). In CI, derandomize so a run is reproducible.
settings.register_profile("needle-driver", database=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("needle-driver")
