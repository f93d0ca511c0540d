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
# Another brief under the same system message: what the prompt cache holds when the user moves to a new brief.
OTHER_BRIEF = (
    "Write a Meta ad.\n"
    "Product: Brewly, a coffee subscription with beans roasted to order and delivered every week.\n"
    "Audience: home baristas. Tone: warm.\n"
    "Give 1 primary text of at most 125 characters and 1 headline of at most 40 characters."
)
OTHER_MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": OTHER_BRIEF}]
