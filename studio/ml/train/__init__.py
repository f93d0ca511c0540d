"""Training loops (torchrun/DDP-ready), checkpoints and their helpers."""
