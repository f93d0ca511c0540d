"""Music: loops from a note-event Transformer (or rules), arranged and rendered by the project's own synthesiser."""

from __future__ import annotations

from studio.core.modality import Family, Modality, Ref, TrainChoice, Training


def train_command(choice: TrainChoice) -> list[str]:
    base = [] if choice.base is None else (["--init", choice.base] if choice.base else ["--scratch"])
    return ["music", *base, *choice.common_args()]


MODALITY = Modality(
    name="music",
    label="Music",
    title="Music",
    icon="music",
    workspace=Ref("studio.ui.workspaces.music:MusicWorkspace"),
    tasks=(Ref("studio.ml.tasks.music"),),
    cli=(Ref("studio.cli.music"), Ref("studio.cli.music_model")),
    default_model="music-transformer",
    speed_probe=Ref("studio.ml.tasks.music:speed_probe"),
    opens=(".wav", ".flac", ".ogg"),
    exports=("WAV/FLAC/OGG at -14 LUFS with the recipe", "type-1 MIDI"),
    runtimes={"music-transformer": Ref("studio.ml.runtime.ort_music:ADAPTER")},
    step_adapters={"music-transformer": Ref("studio.ml.runtime.ort_music:MusicSteps")},
    training=Training(
        families=(Family("Fine-tune the note Transformer", "transformer", "music-transformer"),),
        command=train_command,
        inspector=Ref("studio.ml.train.music_preflight:inspect"),
        estimator=Ref("studio.ml.train.music_preflight:estimate"),
        data_hint="a folder or file of MIDI/ABC tunes",
        sample_hint="Music runs show their train and validation loss; the card lists the validation likelihood.",
        name_hint="my-tunes",
        base_tooltip="Fine-tune a trained note Transformer on your tunes, or train a new one",
    ),
)
