import os

from hypothesis import HealthCheck, settings

# Headless rendering for every test process (EGL/Mesa on CI machines).
os.environ.setdefault("MUJOCO_GL", "egl")

# Wall time is never a pass/fail criterion in tests (benchmarks under bench/ measure speed):
# no per-example deadline and no too-slow health check in Hypothesis, whatever a test's own
# @settings leave out, so a busy machine cannot fail a property test.
settings.register_profile("skillstack", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("skillstack")
