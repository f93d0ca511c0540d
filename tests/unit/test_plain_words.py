"""Plain words for figures, model families, jobs and the trainers' command-line messages."""

from __future__ import annotations

from studio.core.plain_words import (
    format_value,
    job_words,
    metric_name,
    metric_tooltip,
    quality_figures,
    without_cli_flags,
)


def test_metric_names_say_what_a_figure_means_and_keep_the_technical_name_in_the_tooltip():
    assert metric_name("val_nll") == "Surprise at tunes (unseen data)"
    assert metric_name("train_d") == "Critic's error (while training)"
    assert metric_name("perplexity_after") == "Surprise at the text after training"
    assert metric_name("fid") == "Difference from real sprites"
    assert metric_name("some_new_figure") == "Some new figure"
    assert metric_tooltip("val_nll").startswith("val_nll: negative log-likelihood")
    assert format_value("accuracy", 0.713) == "71%" and format_value("val_tokens", 38891.0) == "38,891"


def test_quality_figures_leave_training_internals_to_the_tooltip():
    figures = quality_figures({"train_d": 0.63, "train_g": 1.66, "fid": 1.71, "accuracy": 0.713})
    assert [text for text, _ in figures] == ["Difference from real sprites: 1.71", "Recognisable as its category: 71%"]


def test_trainer_messages_lose_their_command_line_options():
    assert without_cli_flags("checkpoint saved; run again with --resume to continue") == \
        "checkpoint saved; press Resume to continue"
    assert without_cli_flags("runs/x already holds a run (checkpoint step-4): resume it (--resume) or pick another "
                             "folder") == "runs/x already holds a run (checkpoint step-4): resume it or pick another " \
                                          "folder"
    assert without_cli_flags("training diverged at step 9; try a lower learning rate (--lr)") == \
        "training diverged at step 9; try a lower learning rate"
    assert without_cli_flags("pick one with --preset") == "pick one with 'Preset'"
    assert "--" not in without_cli_flags("--set cannot change a model you fine-tune")


def test_job_kinds_are_named_for_people():
    assert job_words("sprite.generate") == "Generating sprites"
    assert job_words("test.fail") == "test.fail"  # unknown kinds stay as they are
