"""Stand-in for `mlx.core` (see ../README.md): NOT MLX. Records the calls the adapter makes."""
import numpy as np

CALLS = []
bfloat16 = "stand-in mlx.core.bfloat16"


class array:
    """Holds a private copy of what it was given, as mx.array copies into MLX memory."""

    def __init__(self, value, dtype=None):
        CALLS.append(("array", value))
        self.np = np.array(value, copy=True)
        self.dtype = dtype or self.np.dtype


def view(a, dtype):
    CALLS.append(("view", a, dtype))
    out = array.__new__(array)
    out.np, out.dtype = a.np, dtype
    return out
