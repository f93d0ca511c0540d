"""Dataset builders and augmentation (sprites, copy text, music events)."""
