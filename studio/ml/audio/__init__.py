"""Audio rendering in torch: the chiptune synthesiser, loop-aware effects, loudness, optional SoundFont rendering."""
