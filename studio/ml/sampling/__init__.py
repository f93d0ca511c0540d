"""Samplers, kept apart from the networks that produce what they sample from (text: :mod:`.text`)."""
