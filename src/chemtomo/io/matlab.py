"""MATLAB ``.mat`` stacks (e.g. the bispl-kaist STEM-EDX data) in chemtomo's conventions.

MATLAB code stores a tilt series of maps as ``(H, W, views)``: image rows, image
columns, then one map per view (channels last). chemtomo wants ``p[a, y, u]``:
the view index first, the tilt axis along the image rows ``y``. So
:func:`read_mat_stack` moves the last axis to the front,
``(H, W, views) -> (views, H, W)``, and keeps the two image axes as they are
(rows stay rows). For the bispl-kaist nanorod and quantum-dot maps that is the
right orientation: the tilt axis runs along the rows ``H`` (checked on the data:
the projected length of the nanorod along ``H`` stays the same at every tilt,
as it does along the tilt axis, while a rod tilted about an axis across it
would shorten as ``cos θ``; see ``docs/real_data.md``).

Multi-channel single views such as ``input_0091.mat`` (``256 x 256 x 3``: Se,
S, Zn) are read the same way and come back as ``(channels, H, W)``; stack the
views of several files with :func:`read_mat_views`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import ChemtomoError

__all__ = ["mat_keys", "read_mat_stack", "read_mat_views"]


def mat_keys(path) -> list[str]:
    """Names of the variables of a MATLAB v4/v5/v7 file (no ``__header__``-style entries)."""
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise ChemtomoError(f"MATLAB file {path} does not exist")
    try:
        return [name for name, *_ in scipy.io.whosmat(str(path)) if not name.startswith("__")]
    except (ValueError, NotImplementedError, OSError) as exc:
        raise ChemtomoError(f"{path.name} is not a MATLAB v4-v7.2 file that scipy can read ({exc}); "
                            "save it with -v7 or convert it") from exc


def read_mat_stack(path, key: str | None = None, *, channels_last: bool = True) -> np.ndarray:
    """Read one array from a MATLAB file, with the view (or channel) axis first.

    Parameters
    ----------
    path : str or Path
        ``.mat`` file (MATLAB v4 to v7.2; v7.3 HDF5 files are not read).
    key : str, optional
        Variable name; the file's only variable if omitted.
    channels_last : bool, default True
        The file stores ``(H, W, views)`` (MATLAB habit): move the last axis to the
        front, giving ``(views, H, W)`` = ``p[a, y, u]`` with the tilt axis along the
        rows. With ``False`` the array is returned with its axes as stored. 2-D
        arrays come back as one view ``(1, H, W)`` either way; arrays of other
        dimensions are returned as stored.

    Returns
    -------
    ndarray
        A C-contiguous array, float32 for integer and float32 inputs, float64 kept.

    Raises
    ------
    ChemtomoError
        Missing file, unknown key, several variables and no key, or a non-numeric variable.

    Examples
    --------
    >>> import numpy as np, scipy.io, tempfile, os
    >>> d = tempfile.mkdtemp(); f = os.path.join(d, "m.mat")
    >>> scipy.io.savemat(f, {"input": np.zeros((4, 5, 3), np.float32)})
    >>> read_mat_stack(f).shape
    (3, 4, 5)
    """
    import scipy.io

    path = Path(path)
    keys = mat_keys(path)
    if key is None:
        if len(keys) != 1:
            raise ChemtomoError(f"{path.name} holds {len(keys)} variables ({', '.join(keys) or 'none'}); "
                                "pass key= to choose one")
        key = keys[0]
    elif key not in keys:
        raise ChemtomoError(f"{path.name} has no variable {key!r}; it holds {', '.join(keys) or 'none'}")
    arr = scipy.io.loadmat(str(path), variable_names=[key])[key]
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise ChemtomoError(f"variable {key!r} of {path.name} is {arr.dtype}, not a real numeric array")
    if arr.dtype != np.float64:
        arr = arr.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim == 3 and channels_last:
        arr = np.moveaxis(arr, -1, 0)
    return np.ascontiguousarray(arr)


def read_mat_views(paths, key: str | None = None) -> np.ndarray:
    """Stack single-view files ``(H, W[, channels])`` into ``(views, channels, H, W)``.

    Each file holds one view (as the bispl-kaist ``input_0091.mat`` .. ``input_0103.mat``,
    ``256 x 256 x 3``); the files are taken in the order given.
    """
    paths = list(paths)
    if not paths:
        raise ChemtomoError("no MATLAB files given; pass one file per view")
    views = [read_mat_stack(p, key) for p in paths]
    shapes = {v.shape for v in views}
    if len(shapes) != 1:
        raise ChemtomoError(f"the files hold arrays of different shapes {sorted(shapes)}; give views of one size")
    return np.stack(views)
