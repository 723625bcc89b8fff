"""Reading and writing tilt series and volumes.

Readers dispatch on file extension through :data:`chemtomo.io.read.READERS`;
writers replace their target atomically. Heavy libraries (mrcfile, tifffile,
RosettaSciIO, zarr) load on first use.
"""

from .instrument import list_signals, read_bruker_spectrum_image, read_spectrum_image
from .read import READERS, read_angles, read_stack, read_tilt_series
from .write import (
    atomic_write,
    read_volume,
    read_volume_set,
    write_angles,
    write_stack,
    write_volume,
    write_volume_set,
)

__all__ = [
    "READERS",
    "atomic_write",
    "list_signals",
    "read_angles",
    "read_bruker_spectrum_image",
    "read_spectrum_image",
    "read_stack",
    "read_tilt_series",
    "read_volume",
    "read_volume_set",
    "write_angles",
    "write_stack",
    "write_volume",
    "write_volume_set",
]
