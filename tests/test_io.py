"""The NetCDF writer: atomic, netcdf4, contract attributes enforced, round trip exact."""

import numpy as np
import pytest
import xarray as xr

from deltann.io import provenance_attrs, read_netcdf, write_netcdf


def _ds():
    ds = xr.Dataset(
        {"x": (("step",), np.arange(5.0), {"long_name": "x", "units": "1"})},
        coords={"step": ("step", np.arange(5), {"long_name": "step", "units": "1"})},
    )
    ds.attrs.update(provenance_attrs("test", {"a": 1, "b": [1, 2]}, [1, 2, 3], "test"))
    return ds


def test_roundtrip_and_encoding(tmp_path):
    path = write_netcdf(_ds(), tmp_path / "sub" / "f.nc")
    back = read_netcdf(path)
    np.testing.assert_array_equal(back["x"].values, np.arange(5.0))
    assert back.attrs["seed_entropy"] == "1 2 3"
    assert back.attrs["config"] == '{"a": 1, "b": [1, 2]}'
    assert len(back.attrs["config_sha256"]) == 64
    assert "_FillValue" not in back["step"].encoding
    assert back["x"].encoding.get("zlib") is True
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89HDF\r\n\x1a\n"  # netCDF-4 (HDF5) on disk
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.nc"]  # no temp file left


def test_missing_attrs_rejected(tmp_path):
    ds = _ds()
    del ds["x"].attrs["units"]
    with pytest.raises(ValueError, match="'x' has no 'units'"):
        write_netcdf(ds, tmp_path / "f.nc")
    ds = _ds()
    del ds.attrs["git_commit"]
    with pytest.raises(ValueError, match="git_commit"):
        write_netcdf(ds, tmp_path / "f.nc")
    assert not list(tmp_path.iterdir())


def test_failed_write_leaves_old_file_intact(tmp_path, monkeypatch):
    path = write_netcdf(_ds(), tmp_path / "f.nc")
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(OSError, match="disk full"):
        write_netcdf(_ds(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["f.nc"]


def test_read_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.nc"):
        read_netcdf(tmp_path / "nope.nc")
