"""Studio: an offline generative studio for sprites, ad copy and music."""

import os

__version__ = "0.1.0"

# Idle OpenMP threads spin briefly, then sleep. A decoding step runs ~300 small parallel regions, so threads that
# sleep at once pay a wake-up per region; threads that spin without limit starve each other (and the UI thread) when
# the cores are busy. Measured on 2 cores, SmolLM2 int8 decode tok/s idle / beside two busy processes:
# passive 38 / 55, libgomp's default spin 83 / 17, a 10,000-iteration spin 86 / 35.
# Set before anything imports torch; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
