"""Side-by-side speed measurements behind ``studio bench``: sprites, copy and music, torch against onnxruntime."""
