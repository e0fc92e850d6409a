"""The shipped model zoo: small trained artifacts (skills, segmenter) with provenance and
figures, rebuilt from scratch by `skillstack zoo build` and installed by `skillstack zoo install`.

Layer 7 (beside `ros_bridge/`): may import every layer up to planning and segmentation.

    from zoo import install_zoo, read_manifest, discover
    install_zoo("my_library", "my_segmenter")       # verify against the project key, then install
    print([a.name for a in read_manifest().artifacts])
"""

from __future__ import annotations

from common.lazy import lazy_exports

_EXPORTS = {
    "ZooArtifact": "zoo.manifest",
    "ZooManifest": "zoo.manifest",
    "read_manifest": "zoo.manifest",
    "install_zoo": "zoo.install",
    "verify_artifact": "zoo.install",
    "build_zoo": "zoo.build",
    "discover": "zoo.discover",
    "DiscoverReport": "zoo.discover",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
