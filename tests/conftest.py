import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# CI: derandomised, so a red run is reproducible; no deadline (first calls into torch are slow).
settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# test-only helpers (tests/models_in_the_wild.py) import as top-level modules from any test folder
sys.path.insert(0, str(Path(__file__).resolve().parent))
