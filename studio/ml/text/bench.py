"""The prompt every language-model speed and quality measurement uses: a realistic ad brief of about 150 tokens
through the model's chat template (see :mod:`studio.ml.bench.copy` and :mod:`studio.ml.eval.perplexity`)."""

from __future__ import annotations

SYSTEM = "You are an advertising copywriter. Write short, concrete, honest copy within the character limits."
BRIEF = (
    "Write a Google search ad using the AIDA framework.\n"
    "Product: TrailRunner X2, a lightweight waterproof trail running shoe.\n"
    "Facts: 240 g per shoe, recycled mesh upper, grippy lugged outsole, 90-day free returns, "
    "free shipping over 50 euros.\n"
    "Audience: weekend trail runners aged 25 to 45 who run in wet, muddy conditions.\n"
    "Tone: energetic, confident, plain words.\n"
    "Give 3 headlines of at most 30 characters and 2 descriptions of at most 90 characters, one per line."
)
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": BRIEF}]
