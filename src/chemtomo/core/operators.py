"""Small linear-operator algebra: adjoints, composition, scaling, stacking, norms.

An :class:`Operator` maps arrays of ``domain_shape`` to arrays of
``range_shape``. It accepts NumPy arrays or torch tensors and returns the same
type on the same device. ``A.T`` is the adjoint (cached, ``A.T.T is A``),
``A @ B`` composes, ``c * A`` scales.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import ShapeError


class Operator:
    """Base class of linear operators."""

    domain_shape: tuple
    range_shape: tuple

    def __init__(self, domain_shape, range_shape):
        self.domain_shape = tuple(domain_shape)
        self.range_shape = tuple(range_shape)
        self._adjoint = None

    # -- subclasses implement these on torch tensors --------------------------------
    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _apply_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # -- buffer-reusing forms for iterative solvers; override where a copy can be saved -------
    def _apply_into(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out[...] = A x``; returns `out`. Solvers reuse `out` to avoid fresh allocations."""
        return out.copy_(self._apply(x))

    def _adjoint_add(self, y: torch.Tensor, out: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """``out += alpha A^T y`` in place; returns `out`."""
        return out.add_(self._apply_adjoint(y), alpha=alpha)

    # -- public interface ------------------------------------------------------------
    def __call__(self, x):
        return _dispatch(self._apply, x, self.domain_shape, self.range_shape, type(self).__name__)

    @property
    def T(self) -> "Operator":
        if self._adjoint is None:
            self._adjoint = _Adjoint(self)
        return self._adjoint

    def __matmul__(self, other: "Operator") -> "Operator":
        return Composition(self, other)

    def __rmul__(self, scalar) -> "Operator":
        return Scaled(self, float(scalar))

    def __mul__(self, scalar) -> "Operator":
        if isinstance(scalar, Operator):
            raise TypeError("compose operators with @, not *")
        return Scaled(self, float(scalar))

    def norm(self, iterations: int = 30, *, rng=0, device=None) -> float:
        """Estimate the operator norm ||A|| by power iteration on A^T A."""
        gen = torch.Generator().manual_seed(int(rng)) if not isinstance(rng, torch.Generator) else rng
        x = torch.rand(self.domain_shape, generator=gen, dtype=torch.float32)
        if device is not None:
            x = x.to(device)
        s = 0.0
        for _ in range(iterations):
            x = x / torch.linalg.vector_norm(x)
            x = self.T._apply(self._apply(x))
            s = float(torch.linalg.vector_norm(x))
        return float(np.sqrt(s))


class _Adjoint(Operator):
    def __init__(self, op: Operator):
        super().__init__(op.range_shape, op.domain_shape)
        self._adjoint = op

    def _apply(self, y):
        return self._adjoint._apply_adjoint(y)

    def _apply_adjoint(self, x):
        return self._adjoint._apply(x)

    def __repr__(self):
        return f"{self._adjoint!r}.T"


class Composition(Operator):
    """``A @ B``: apply B, then A."""

    def __init__(self, left: Operator, right: Operator):
        if tuple(left.domain_shape) != tuple(right.range_shape):
            raise ShapeError(
                f"cannot compose: left operator takes {left.domain_shape} but right one gives {right.range_shape}"
            )
        super().__init__(right.domain_shape, left.range_shape)
        self.left, self.right = left, right

    def _apply(self, x):
        return self.left._apply(self.right._apply(x))

    def _apply_adjoint(self, y):
        return self.right._apply_adjoint(self.left._apply_adjoint(y))

    def _apply_into(self, x, out):
        return self.left._apply_into(self.right._apply(x), out)

    def _adjoint_add(self, y, out, alpha=1.0):
        return self.right._adjoint_add(self.left._apply_adjoint(y), out, alpha)

    def __repr__(self):
        return f"({self.left!r} @ {self.right!r})"


class Scaled(Operator):
    """``c * A``."""

    def __init__(self, op: Operator, scalar: float):
        super().__init__(op.domain_shape, op.range_shape)
        self.op, self.scalar = op, scalar

    def _apply(self, x):
        return self.scalar * self.op._apply(x)

    def _apply_adjoint(self, y):
        return self.scalar * self.op._apply_adjoint(y)

    def _apply_into(self, x, out):
        return self.op._apply_into(x, out).mul_(self.scalar)

    def _adjoint_add(self, y, out, alpha=1.0):
        return self.op._adjoint_add(y, out, alpha * self.scalar)

    def __repr__(self):
        return f"{self.scalar:g} * {self.op!r}"


def to_tensor(x, device=None, dtype=torch.float32) -> torch.Tensor:
    """A float32 tensor view or copy of `x` (NumPy array or tensor)."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        t = torch.from_numpy(np.ascontiguousarray(x))
    return t.to(device=device if device is not None else t.device, dtype=dtype)


def like_input(t: torch.Tensor, x):
    """Return `t` as the same kind of array as `x` (NumPy in, NumPy out)."""
    if isinstance(x, torch.Tensor):
        return t
    return t.detach().cpu().numpy()


def _dispatch(fn, x, in_shape, out_shape, name):
    if tuple(x.shape) != tuple(in_shape):
        raise ShapeError(f"{name} takes arrays of shape {tuple(in_shape)}, got {tuple(x.shape)}")
    t = to_tensor(x)
    return like_input(fn(t), x)
