"""Tilt-series alignment: drift (shifts), tilt-axis offset and in-plane angle.

Shifts are ``(dy, du)`` in pixels per image, the distance the content of the
image has moved (the convention of :func:`chemtomo.simulate.acquisition.random_shifts`);
``apply_shifts(stack, -shifts)`` aligns a stack.
"""

from .apply import METHODS, align_series, align_to_directory, apply_shifts, shifts_for_angles
from .frames import frame_shifts, shift_whole
from .com import centre_of_mass, com_shifts, remove_translation, sinusoid_fit
from .matching import fourier_shift, projection_matching
from .tilt_axis import axis_offset, rotate_stack, tilt_axis_angle
from .xcorr import register, xcorr_shifts

__all__ = ["METHODS", "align_series", "align_to_directory", "apply_shifts", "shifts_for_angles", "centre_of_mass",
           "com_shifts", "remove_translation", "sinusoid_fit", "fourier_shift", "projection_matching",
           "axis_offset", "rotate_stack", "tilt_axis_angle", "register", "xcorr_shifts", "frame_shifts", "shift_whole"]
