"""One workspace per modality (sprites, copy, music, training) plus the model manager."""
