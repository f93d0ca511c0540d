"""File-format readers and writers (pure Python + numpy/Pillow/soundfile; no Qt, no torch)."""
