"""ParaView image data: the layout ParaView expects (x fastest) and a faithful round trip."""

import numpy as np
import pytest

from insr.io.paraview import read_image_data, write_image_data, write_pvd


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2)])
def test_image_data_round_trips_on_a_non_square_grid(tmp_path, shape):
    d = len(shape)
    rng = np.random.default_rng(0)
    scalar = rng.normal(size=shape).astype(np.float32)
    vector = rng.normal(size=shape + (d,)).astype(np.float32)
    lo, hi = [-1.0, 0.0, 2.0][:d], [1.0, 3.0, 4.0][:d]
    path = write_image_data(tmp_path / "f.vti", lo, hi, shape, {"p": scalar, "u": vector})
    origin, spacing, data = read_image_data(path)
    assert origin[:d] == pytest.approx(lo)
    assert spacing[:d] == pytest.approx([(h - l) / (n - 1) for l, h, n in zip(lo, hi, shape)])
    assert np.array_equal(data["p"].reshape(shape), scalar)
    assert np.array_equal(data["u"].reshape(shape + (3,))[..., :d], vector)
    assert not data["u"][..., d:].any()  # padded to 3 components


def test_image_data_stores_x_fastest(tmp_path):
    # VTK's ordering: point index = ix + nx·iy.  Decode the raw array and check it.
    import base64
    import xml.etree.ElementTree as ET

    a = np.arange(6, dtype=np.float32).reshape(3, 2)  # a[ix, iy] = 2·ix + iy
    path = write_image_data(tmp_path / "g.vti", [0, 0], [1, 1], (3, 2), {"a": a})
    raw = base64.b64decode(next(ET.parse(path).getroot().iter("DataArray")).text.strip())
    vals = np.frombuffer(raw[4:], "<f4")
    assert vals.tolist() == [a[ix, iy] for iy in range(2) for ix in range(3)]


def test_bad_shapes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="'u' has shape"):
        write_image_data(tmp_path / "x.vti", [0, 0], [1, 1], (3, 3), {"u": np.zeros((3, 4))})
    with pytest.raises(ValueError, match="2D/3D grid"):
        write_image_data(tmp_path / "x.vti", [0], [1], (3,), {"u": np.zeros(3)})


def test_pvd_lists_the_series(tmp_path):
    text = write_pvd(tmp_path / "s.pvd", [(0.0, "a.vti"), (0.5, "b.vti")]).read_text()
    assert 'timestep="0.5"' in text and 'file="b.vti"' in text
