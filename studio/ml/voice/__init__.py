"""Speech synthesis: the Piper neural voice on onnxruntime (its phonemes from espeak-ng in a child process), the
classic Flite synthesiser, and how a script becomes one timed voice-over (see studio.core.voice)."""
