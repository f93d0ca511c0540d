"""Tags from tile names, the vocabulary, and prompts read against it."""

from __future__ import annotations

from studio.core.sprite_tags import MAX_PROMPT_TAGS, TagVocabulary, singular, tags_from_path, words_of


def test_tags_are_the_singular_words_of_a_path():
    assert tags_from_path("mon/undead/skeletons/skeleton_humanoid_large.png") == [
        "undead", "skeleton", "humanoid", "large"]
    assert tags_from_path("item/potion/ruby2.png") == ["potion", "ruby"]
    assert tags_from_path("dngn/wall/brick_brown-vines3.png") == ["wall", "brick", "brown", "vine"]
    assert [singular(w) for w in ("abilities", "boxes", "glass", "elves", "fungi", "octopus")] == [
        "ability", "box", "glass", "elf", "fungus", "octopus"]


def _vocabulary() -> TagVocabulary:
    tiles = [["skeleton", "undead"]] * 10 + [["potion", "red"]] * 9 + [["red", "wall", "brick"]] * 8 + [["rare"]] * 2
    categories = ["characters"] * 10 + ["items"] * 9 + ["wall"] * 8 + ["items"] * 2
    return TagVocabulary.build(tiles, categories, min_count=8)


def test_vocabulary_keeps_frequent_words_most_frequent_first():
    vocabulary = _vocabulary()
    assert vocabulary.words == ("red", "skeleton", "undead", "potion", "brick", "wall")
    assert sum(vocabulary.category_counts["red"].values()) == 17 and "rare" not in vocabulary.words
    assert vocabulary.category_of(["red"]) == "items" and vocabulary.category_of(["red", "brick"]) == "wall"
    assert vocabulary.category_of([]) is None
    assert TagVocabulary.from_dict(vocabulary.to_dict()) == vocabulary


def test_prompts_are_read_in_the_vocabulary_and_unknown_words_explained():
    vocabulary = _vocabulary()
    reading = vocabulary.read("Red Skeletons, with a laser and a potoin!")
    assert reading.tags == ("red", "skeleton")
    assert reading.unknown == ("laser", "potoin")
    assert reading.suggestions == {"potoin": ("potion",)}
    assert "'laser'" in reading.explain() and "did you mean potion?" in reading.explain()
    assert vocabulary.read("").tags == () and vocabulary.read("").explain() == ""


def test_long_and_hostile_prompts_are_bounded():
    vocabulary = TagVocabulary.build([[f"word{chr(97 + i)}x"] for i in range(12) for _ in range(8)],
                                     ["items"] * 96, min_count=8)
    prompt = " ".join(vocabulary.words) + " " + "z" * 5000
    reading = vocabulary.read(prompt)
    assert len(reading.tags) == MAX_PROMPT_TAGS and len(reading.unused) == 12 - MAX_PROMPT_TAGS
    assert "Only the first" in reading.explain()
    assert words_of("🐉 ドラゴン dragon") == ["dragon"]
    assert TagVocabulary.from_dict("nonsense") == TagVocabulary(()) and TagVocabulary.from_dict(
        {"words": [1, 2]}) == TagVocabulary(())
