"""Moved to `common.video` (the one mp4 writer) in skillstack 0.2; this path is removed in 0.3."""

import warnings

from common.video import read_mp4, write_mp4  # noqa: F401

warnings.warn("'envs.video' moved to 'common.video' in skillstack 0.2 and is removed in 0.3: import "
              "'common.video' instead", DeprecationWarning, stacklevel=2)
