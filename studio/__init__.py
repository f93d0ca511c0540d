"""Studio: an offline generative studio for sprites, ad copy and music."""

import os

__version__ = "0.1.0"

# Idle OpenMP threads sleep instead of spinning: spinning threads starve each other (and the UI thread) on small
# machines under load (measured: 1.3 tok/s with spinning vs 5.5 with passive waits on 2 busy cores).
# Set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
