"""ParaView files: VTK ImageData (``.vti``) for fields on a grid, and ``.pvd`` time series.

Unstructured meshes (the elastic bodies) are written with meshio as ``.vtu``; this module
adds what meshio does not write — regular-grid image data — and the collection file that
makes a series of either a time series in ParaView (File → Open the ``.pvd``).

The ``.vti`` layout follows the VTK XML file format (https://docs.vtk.org/en/latest/
design_documents/VTKFileFormats.html): points ordered x fastest, then y, then z; each
array stored "binary", i.e. base64 of a UInt32 byte count followed by the little-endian
Float32 values.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["write_pvd", "write_image_data", "read_image_data"]


def write_pvd(path: Path, entries: Sequence[tuple[float, str]]) -> Path:
    """A ParaView collection file: ``entries`` = [(time, file name relative to ``path``), ...]."""
    path = Path(path)
    lines = ['<?xml version="1.0"?>',
             '<VTKFile type="Collection" version="0.1" byte_order="LittleEndian">', "  <Collection>"]
    lines += [f'    <DataSet timestep="{t:.9g}" group="" part="0" file="{name}"/>' for t, name in entries]
    lines += ["  </Collection>", "</VTKFile>", ""]
    path.write_text("\n".join(lines))
    return path


def _encode(values: np.ndarray) -> str:
    raw = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return base64.b64encode(np.array(len(raw), "<u4").tobytes() + raw).decode("ascii")


def write_image_data(path: Path, lo: Sequence[float], hi: Sequence[float], shape: Sequence[int],
                     point_data: Mapping[str, np.ndarray]) -> Path:
    """Fields on the regular grid of ``shape`` nodes spanning the box [lo, hi] (2D or 3D).

    ``point_data[name]`` has shape ``(*shape,)`` (a scalar) or ``(*shape, c)`` (c ≤ 3
    components; vectors are padded to 3 as ParaView expects), indexed ``[ix, iy(, iz)]``.
    """
    shape = tuple(int(n) for n in shape)
    d = len(shape)
    if d not in (2, 3) or len(lo) != d or len(hi) != d or min(shape) < 2:
        raise ValueError(f"write_image_data: need a 2D/3D grid of ≥ 2 nodes per axis, got shape {shape}")
    n3 = shape + (1,) * (3 - d)
    origin = list(map(float, lo)) + [0.0] * (3 - d)
    spacing = [(float(h) - float(l)) / (n - 1) for l, h, n in zip(lo, hi, shape)] + [1.0] * (3 - d)
    extent = " ".join(f"0 {n - 1}" for n in n3)
    arrays, scalars, vectors = [], None, None
    for name, a in point_data.items():
        a = np.asarray(a, np.float32)
        if a.shape[:d] != shape or a.ndim > d + 1 or (a.ndim == d + 1 and a.shape[-1] > 3):
            raise ValueError(f"write_image_data: '{name}' has shape {a.shape}, expected {shape} or {shape} + (≤ 3,)")
        comps = 1 if a.ndim == d else 3
        if a.ndim == d + 1:
            a = np.concatenate([a, np.zeros(shape + (3 - a.shape[-1],), np.float32)], axis=-1)
            vectors = vectors or name
        else:
            scalars = scalars or name
        # VTK wants x fastest: transpose [ix, iy, iz, c] to [iz, iy, ix, c] before flattening
        flat = np.transpose(a.reshape(n3 + ((3,) if comps == 3 else ())), (2, 1, 0, 3) if comps == 3 else (2, 1, 0))
        arrays.append(f'        <DataArray type="Float32" Name="{name}" NumberOfComponents="{comps}" '
                      f'format="binary">{_encode(flat.ravel())}</DataArray>')
    attrs = (f' Scalars="{scalars}"' if scalars else "") + (f' Vectors="{vectors}"' if vectors else "")
    text = "\n".join([
        '<?xml version="1.0"?>',
        '<VTKFile type="ImageData" version="1.0" byte_order="LittleEndian" header_type="UInt32">',
        f'  <ImageData WholeExtent="{extent}" Origin="{" ".join(map(repr, origin))}" '
        f'Spacing="{" ".join(map(repr, spacing))}">',
        f'    <Piece Extent="{extent}">',
        f"      <PointData{attrs}>", *arrays, "      </PointData>",
        "    </Piece>", "  </ImageData>", "</VTKFile>", ""])
    path = Path(path)
    path.write_text(text)
    return path


def read_image_data(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(origin, spacing, {name: array indexed [ix, iy, iz(, c)]})`` of a ``.vti`` written
    by :func:`write_image_data` (for checks and notebooks; ParaView reads any ``.vti``)."""
    root = ET.parse(path).getroot()
    img = root.find("ImageData")
    ext = list(map(int, img.get("WholeExtent").split()))
    n3 = tuple(ext[2 * i + 1] - ext[2 * i] + 1 for i in range(3))
    out = {}
    for arr in img.iter("DataArray"):
        raw = base64.b64decode(arr.text.strip())
        nbytes = int(np.frombuffer(raw[:4], "<u4")[0])
        vals = np.frombuffer(raw[4:4 + nbytes], "<f4")
        c = int(arr.get("NumberOfComponents", "1"))
        a = vals.reshape(n3[::-1] + ((c,) if c > 1 else ()))
        out[arr.get("Name")] = np.transpose(a, (2, 1, 0, 3) if c > 1 else (2, 1, 0))
    origin = np.array(list(map(float, img.get("Origin").split())))
    spacing = np.array(list(map(float, img.get("Spacing").split())))
    return origin, spacing, out
