"""Hypothesis profiles for the fuzz tests.

``ci`` (the default, run by ``make test``): a few hundred examples per target, derandomized
so CI is reproducible. ``long`` (``make fuzz``, or ``LOSSD_FUZZ_PROFILE=long``): many
thousands of random examples per target.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much])
settings.register_profile("ci", max_examples=300, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=int(os.environ.get("LOSSD_FUZZ_EXAMPLES", "5000")),
                          **_COMMON)
settings.load_profile(os.environ.get("LOSSD_FUZZ_PROFILE", "ci"))
