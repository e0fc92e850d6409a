"""Which fiducial marker is where: the ArUco dictionary, the marker size, the marker id on each face
of each object, and what the project generates from that (marker images to print, the corners of
each marker in its object's frame for PnP, and the thin visual boxes that draw the markers on the
simulated cubes).

Marker frame (OpenCV's, as `cv2.SOLVEPNP_IPPE_SQUARE` expects): x right, y up, z out of the marker
towards a viewer; corners in detector order top-left, top-right, bottom-right, bottom-left.
A face's marker has its z along the face's outward normal and its "up" along +z of the object
(side faces) or +x (top and bottom faces).

`python -m perception.markers` rewrites the PNG images in perception/markers/ and the simulator's
marker boxes (sim_assets/textures/cube_markers.json) from perception/markers.yaml.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from common.atomic import atomic_write_bytes, atomic_write_text

FACES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    # face -> (outward normal, marker "up"), object frame
    "+x": (np.array([1.0, 0, 0]), np.array([0, 0, 1.0])),
    "-x": (np.array([-1.0, 0, 0]), np.array([0, 0, 1.0])),
    "+y": (np.array([0, 1.0, 0]), np.array([0, 0, 1.0])),
    "-y": (np.array([0, -1.0, 0]), np.array([0, 0, 1.0])),
    "+z": (np.array([0, 0, 1.0]), np.array([1.0, 0, 0])),
    "-z": (np.array([0, 0, -1.0]), np.array([1.0, 0, 0])),
}
# Layers drawn over a face, outward: the white quiet zone (if any), the black square, the white cells;
# boxes 0.1 mm thick, 0.01 mm apart (the depth buffer resolves ~0.001 mm at 0.65 m). Thin on purpose: a
# raised black square casts a shadow on the face around it, which would make it look larger (a 0.5 mm
# step did: 0.6 % larger, 4 mm of depth error).
LAYER_THICKNESS = 0.0001
LAYER_GAP = 0.00001


def layer_offsets(quiet_zone: float) -> dict[str, float]:
    """Centre offset (m, from the face) of each layer of a marker with this quiet zone."""
    names = (["quiet"] if quiet_zone > 0 else []) + ["black", "white"]
    return {n: LAYER_GAP + i * (LAYER_THICKNESS + LAYER_GAP) + 0.5 * LAYER_THICKNESS for i, n in enumerate(names)}


def surface_offset(quiet_zone: float) -> float:
    """The black square's outer surface above the face: where its corners are (PnP object points)."""
    return layer_offsets(quiet_zone)["black"] + 0.5 * LAYER_THICKNESS
SIM_MARKERS_FILE = "textures/cube_markers.json"  # inside sim_assets


class MarkerSetError(ValueError):
    """A marker description that cannot be used (unknown dictionary, duplicate ids, bad sizes)."""


@dataclass(frozen=True)
class MarkedObject:
    """An object carrying markers: its cube edge (m) and the marker id on each face."""

    name: str
    size: float
    faces: dict[str, int]


@dataclass(frozen=True)
class MarkerSet:
    """A set of markers: dictionary, size, and which id sits on which face of which object.

    `load()` reads the shipped perception/markers.yaml; every id is unique across objects and
    the calibration marker.
    """

    dictionary_name: str
    marker_size: float
    quiet_zone: float
    objects: dict[str, MarkedObject]
    calibration_id: int
    calibration_size: float
    calibration_quiet_zone: float
    source: str = "<memory>"
    _by_id: dict[int, tuple[str, str]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not hasattr(cv2.aruco, self.dictionary_name) or not self.dictionary_name.startswith("DICT_"):
            raise MarkerSetError(f"{self.source}: unknown ArUco dictionary {self.dictionary_name!r} (cv2.aruco.DICT_*)")
        n_ids = self.dictionary().bytesList.shape[0]
        for what, v in (("marker_size", self.marker_size), ("calibration.marker_size", self.calibration_size)):
            if not (np.isfinite(v) and v > 0):
                raise MarkerSetError(f"{self.source}: {what} must be a positive length in metres, got {v!r}")
        seen: dict[int, tuple[str, str]] = {}
        for obj in self.objects.values():
            if self.marker_size + 2 * self.quiet_zone > obj.size:
                raise MarkerSetError(f"{self.source}: marker {self.marker_size} m + quiet zone does not fit on {obj.name}'s {obj.size} m face")
            for face, marker_id in obj.faces.items():
                if face not in FACES:
                    raise MarkerSetError(f"{self.source}: {obj.name}: unknown face {face!r}; faces: {list(FACES)}")
                self._claim(seen, marker_id, (obj.name, face), n_ids)
        self._claim(seen, self.calibration_id, ("calibration", ""), n_ids)
        self._by_id.update(seen)

    def _claim(self, seen: dict, marker_id: int, owner: tuple[str, str], n_ids: int) -> None:
        if not (isinstance(marker_id, int) and 0 <= marker_id < n_ids):
            raise MarkerSetError(f"{self.source}: marker id {marker_id!r} ({owner[0]} {owner[1]}) is not in {self.dictionary_name} (0..{n_ids - 1})")
        if marker_id in seen:
            raise MarkerSetError(f"{self.source}: marker id {marker_id} is on both {seen[marker_id]} and {owner}")
        seen[marker_id] = owner

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path | None = None) -> "MarkerSet":
        """Read a marker description YAML (default: the shipped perception/markers.yaml)."""
        if path is None:
            text, source = resources.files("perception").joinpath("markers.yaml").read_text(encoding="utf-8"), "perception/markers.yaml"
        else:
            text, source = Path(path).read_text(encoding="utf-8"), str(path)
        doc = yaml.safe_load(text)
        return cls.from_dict(doc, source)

    @classmethod
    def from_dict(cls, doc: Any, source: str = "<dict>") -> "MarkerSet":
        """Build from the YAML's mapping (see perception/markers.yaml for the keys)."""
        if not isinstance(doc, dict):
            raise MarkerSetError(f"{source}: expected a mapping, got {type(doc).__name__}")
        try:
            objects = {
                name: MarkedObject(name, float(o["size"]), {str(f): int(i) for f, i in o["faces"].items()})
                for name, o in (doc.get("objects") or {}).items()
            }
            calib = doc.get("calibration") or {}
            return cls(
                dictionary_name=str(doc["dictionary"]),
                marker_size=float(doc["marker_size"]),
                quiet_zone=float(doc.get("quiet_zone", 0.0)),
                objects=objects,
                calibration_id=int(calib.get("marker_id", 49)),
                calibration_size=float(calib.get("marker_size", 0.06)),
                calibration_quiet_zone=float(calib.get("quiet_zone", 0.008)),
                source=source,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise MarkerSetError(f"{source}: malformed marker description ({exc!r}); see perception/markers.yaml") from None

    # ------------------------------------------------------------------ lookups
    def dictionary(self) -> cv2.aruco.Dictionary:
        """The OpenCV ArUco dictionary object."""
        return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary_name))

    def owner(self, marker_id: int) -> tuple[str, str] | None:
        """(object, face) a marker id is on, ("calibration", "") for the calibration marker, None if not ours."""
        return self._by_id.get(int(marker_id))

    def marker_length(self, marker_id: int) -> float:
        """Edge of the black square of marker `marker_id` (m)."""
        return self.calibration_size if marker_id == self.calibration_id else self.marker_size

    def object_corners(self, name: str) -> dict[int, np.ndarray]:
        """Marker id -> its 4 corners (4, 3) in object `name`'s frame, in detector order."""
        obj = self._object(name)
        half = 0.5 * obj.size + surface_offset(self.quiet_zone)
        local = square_corners(self.marker_size)
        out = {}
        for face, marker_id in obj.faces.items():
            normal, up = FACES[face]
            R = face_rotation(normal, up)
            out[marker_id] = (local @ R.T + half * normal).astype(np.float64)
        return out

    def _object(self, name: str) -> MarkedObject:
        try:
            return self.objects[name]
        except KeyError:
            raise KeyError(f"no marked object {name!r}; marked objects: {list(self.objects)}") from None

    # ------------------------------------------------------------------ images
    def marker_bits(self, marker_id: int) -> np.ndarray:
        """The marker's cells including its black border, (n+2, n+2) uint8, 1 = white."""
        n = self.dictionary().markerSize + 2
        img = cv2.aruco.generateImageMarker(self.dictionary(), int(marker_id), n * 10, borderBits=1)
        return (img[5::10, 5::10] > 127).astype(np.uint8)

    def marker_image(self, marker_id: int, pixels_per_cell: int = 40) -> np.ndarray:
        """A printable marker image (uint8, grey) with its white quiet zone, from cv2.aruco.generateImageMarker."""
        n = self.dictionary().markerSize + 2
        side = n * pixels_per_cell
        img = cv2.aruco.generateImageMarker(self.dictionary(), int(marker_id), side, borderBits=1)
        length = self.marker_length(marker_id)
        quiet = self.calibration_quiet_zone if marker_id == self.calibration_id else self.quiet_zone
        pad = max(int(round(side * quiet / length)), pixels_per_cell)  # printed: at least one cell of white
        return cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255)

    def write_textures(self, out_dir: str | Path) -> list[Path]:
        """Write every marker as `<object>_<face>_id<N>.png` (and the calibration marker) into `out_dir`."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for marker_id, (obj, face) in sorted(self._by_id.items()):
            name = f"{obj}_{face.replace('+', 'p').replace('-', 'm')}_id{marker_id}.png" if face else f"{obj}_id{marker_id}.png"
            ok, png = cv2.imencode(".png", self.marker_image(marker_id))
            if not ok:
                raise RuntimeError(f"PNG encoding of marker {marker_id} failed")
            written.append(atomic_write_bytes(out_dir / name, png.tobytes()))
        return written

    # ------------------------------------------------------------------ simulation geometry
    def marker_boxes(self, marker_id: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
        """Boxes that draw one marker in its own frame (z out of the marker, surface at z=0):
        (centre (3,), half sizes (3,), "white" | "black"), the quiet zone (if any: with none, the surface the
        marker is on surrounds it) first."""
        length = self.marker_length(marker_id)
        quiet = self.calibration_quiet_zone if marker_id == self.calibration_id else self.quiet_zone
        t, z = 0.5 * LAYER_THICKNESS, layer_offsets(quiet)
        boxes = [(np.array([0.0, 0.0, z["quiet"]]), np.array([0.5 * length + quiet] * 2 + [t]), "white")] if quiet > 0 else []
        boxes.append((np.array([0.0, 0.0, z["black"]]), np.array([0.5 * length] * 2 + [t]), "black"))
        bits = self.marker_bits(marker_id)
        cell = length / bits.shape[0]
        for r0, r1, c0, c1 in _white_rectangles(bits):
            x = -0.5 * length + 0.5 * (c0 + c1) * cell
            y = 0.5 * length - 0.5 * (r0 + r1) * cell
            boxes.append((np.array([x, y, z["white"]]), np.array([0.5 * (c1 - c0) * cell, 0.5 * (r1 - r0) * cell, t]), "white"))
        return boxes

    def object_boxes(self, name: str) -> list[tuple[np.ndarray, np.ndarray, str]]:
        """Every marker box of object `name` in its frame (axis-aligned: faces are the cube's)."""
        obj = self._object(name)
        out = []
        for face, marker_id in obj.faces.items():
            normal, up = FACES[face]
            R = face_rotation(normal, up)
            for centre, half, colour in self.marker_boxes(marker_id):
                out.append((R @ centre + 0.5 * obj.size * normal, np.abs(R) @ half, colour))
        return out

    def sim_markers_doc(self) -> dict[str, Any]:
        """The simulator's marker geometry (what sim_assets/textures/cube_markers.json holds)."""
        return {
            "generated_by": "python -m perception.markers (from perception/markers.yaml); do not edit",
            "dictionary": self.dictionary_name,
            "marker_size": self.marker_size,
            "objects": {
                name: [[*np.round(c, 6).tolist(), *np.round(h, 6).tolist(), colour] for c, h, colour in self.object_boxes(name)]
                for name in self.objects
            },
        }

    def write_sim_markers(self, path: str | Path | None = None) -> Path:
        """Write the simulator's marker geometry (default: sim_assets/textures/cube_markers.json)."""
        if path is None:
            import sim_assets

            path = Path(sim_assets.__file__).parent / SIM_MARKERS_FILE
        return atomic_write_text(path, json.dumps(self.sim_markers_doc(), indent=1) + "\n")


def square_corners(length: float) -> np.ndarray:
    """A square marker's corners in its frame, detector order (what SOLVEPNP_IPPE_SQUARE expects)."""
    h = 0.5 * length
    return np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]])


def face_rotation(normal: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Rotation from a marker's frame to the object's, for a marker on the face with outward `normal`."""
    x = np.cross(up, normal)
    return np.column_stack((x, up, normal))


def _white_rectangles(bits: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Cover the white cells with few rectangles (row runs, merged down while identical): (r0, r1, c0, c1)."""
    runs: list[list[int]] = []  # open rectangles [r0, r1, c0, c1]
    done: list[tuple[int, int, int, int]] = []
    for r, row in enumerate(bits):
        row_runs, c = [], 0
        while c < len(row):
            if row[c]:
                c0 = c
                while c < len(row) and row[c]:
                    c += 1
                row_runs.append((c0, c))
            else:
                c += 1
        still = []
        for rect in runs:
            if (rect[2], rect[3]) in row_runs and rect[1] == r:
                rect[1] = r + 1
                row_runs.remove((rect[2], rect[3]))
                still.append(rect)
            else:
                done.append(tuple(rect))
        runs = still + [[r, r + 1, c0, c1] for c0, c1 in row_runs]
    return done + [tuple(rect) for rect in runs]


def main() -> None:
    """Regenerate the marker PNGs (perception/markers/) and the simulator's marker geometry."""
    markers = MarkerSet.load()
    pngs = markers.write_textures(Path(__file__).parent / "markers")
    sim = markers.write_sim_markers()
    print(f"wrote {len(pngs)} marker images to {pngs[0].parent} and {sim}")


if __name__ == "__main__":
    main()
