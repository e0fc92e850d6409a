import os

# Headless rendering for every test process (EGL/Mesa on CI machines).
os.environ.setdefault("MUJOCO_GL", "egl")
