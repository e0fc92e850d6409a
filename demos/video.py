"""Moved to `common.video` (the one mp4 writer) in skillstack 0.2; this path is removed in 0.3."""

import warnings

from common.video import Mp4Writer  # noqa: F401

warnings.warn("'demos.video' moved to 'common.video' in skillstack 0.2 and is removed in 0.3: import "
              "'common.video' instead", DeprecationWarning, stacklevel=2)
