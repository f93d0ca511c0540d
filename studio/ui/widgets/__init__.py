"""Reusable widgets: the limit-aware text editor, waveform, piano roll, audio player, sprite canvas."""
