"""Reproductions of the probe's failures around interrupted work and model folders (issue 14): a resume after a
kill while the run record was written, an ONNX re-export killed while onnxruntime wrote the graph, training on a
folder where some tunes are unusable, music21's shared pickle cache, and the shared model folder in every command."""

from __future__ import annotations

import os
import pickle
import re
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from studio.cli import main
from studio.core import paths
from studio.core.context import JobContext
from studio.core.jobs import JobSpec
from studio.core.settings import Settings, save_settings
from studio.ml.checkpoint import sha256_file
from studio.ml.export.pipeline import export_model
from studio.ml.runtime.exports import find_export
from studio.ml.runtime.ort_session import open_session
from studio.ml.store import ModelStore
from studio.ml.tasks.data import inspect_data
from studio.ml.train.sprite import SpriteTrainConfig, train_sprite
from tests.crash import DIED, NEEDS_FORK, crash_at, random_kills
from tests.ml.music_fixtures import write_midi
from tests.ml.sprite_helpers import make_dataset, save_tiny_model, tiny_overrides
from tests.ml.test_model_files import write_probe

pytestmark = pytest.mark.usefixtures("one_thread")


@NEEDS_FORK
def test_a_resume_killed_while_writing_the_run_record_can_be_resumed(tmp_path: Path) -> None:
    """run.json was rewritten in place on every start and resume; a kill there made --resume fail to parse it."""
    config = SpriteTrainConfig(family="gan", data=make_dataset(tmp_path / "sprites", train=12, val=4),
                               run_dir=tmp_path / "run", preset="quick", max_steps=2, batch_size=4, sample_every=2,
                               checkpoint_every=2, model=tiny_overrides("gan"), device="cpu")
    train_sprite(config, lambda e: None)
    resume = replace(config, resume=True, max_steps=4)
    assert crash_at(lambda: train_sprite(resume, lambda e: None), point=0)  # its first write is the run record
    steps: list[int] = []
    result = train_sprite(resume, lambda e: steps.append(e["step"]))
    assert steps == [3, 4] and result.steps == 4


def _killed_while_onnxruntime_writes() -> None:
    import onnxruntime as ort

    real = ort.InferenceSession

    def session(model, options=None, *args, **kwargs):
        if options is not None and options.optimized_model_filepath:
            Path(options.optimized_model_filepath).write_bytes(b"")  # what is on disk when the kill lands
            os._exit(DIED)
        return real(model, options, *args, **kwargs)

    ort.InferenceSession = session
    export_model("tiny-gan", "fp32", store=ModelStore())


@NEEDS_FORK
def test_an_onnx_re_export_killed_mid_write_keeps_the_previous_export(tmp_path: Path) -> None:
    """generator.onnx was written in place by onnxruntime's optimiser; a kill left it 0 bytes long."""
    weights = save_tiny_model("gan", paths.user_models_dir(), "tiny-gan")
    export_model("tiny-gan", "fp32", store=ModelStore())
    assert crash_at(_killed_while_onnxruntime_writes, point=10**6)  # dies in onnxruntime, not at a file event
    record = find_export("tiny-gan", ("fp32",), sha256_file(weights))  # every graph checked against its sha256
    assert record is not None
    open_session(record.graph_path("generator"))


@pytest.mark.slow
@NEEDS_FORK
def test_fifty_random_kills_during_onnx_re_exports(tmp_path: Path) -> None:
    import time

    weights = save_tiny_model("gan", paths.user_models_dir(), "tiny-gan")
    started = time.perf_counter()
    export_model("tiny-gan", "fp32", store=ModelStore())
    window = 2 * (time.perf_counter() - started)

    def check() -> int:
        record = find_export("tiny-gan", ("fp32",), sha256_file(weights))
        assert record is not None
        open_session(record.graph_path("generator"))
        return int(re.sub(r"\D", "", str(record.extra.get("created", ""))) or 0)  # when it was exported

    folder = paths.user_models_dir() / "onnx"
    report = random_kills(lambda _: export_model("tiny-gan", "fp32", store=ModelStore()), check, folder,
                          kills=50, window=window)
    print(report.line("ONNX re-export"))
    assert report.intact == 50 and report.left_temporaries >= 1


def test_music_training_skips_the_files_inspection_rejected(tmp_path: Path, capsys) -> None:
    import json

    import torch

    from studio.ml.checkpoint import save_model
    from studio.ml.models.music_transformer import MusicTransformer, MusicTransformerConfig
    from tests.ml.test_music_model import TINY

    tunes = tmp_path / "tunes"
    tunes.mkdir()
    for i in range(2):
        write_midi(tunes / f"good{i}.mid", [(64 + (i + k) % 5, k * 0.5, 0.5) for k in range(24)])
    (tunes / "broken.mid").write_bytes(b"MThd this is not a MIDI file")
    write_midi(tunes / "short.mid", [(60, 0.0, 0.5), (62, 0.5, 0.5)])
    inspected = inspect_data(JobSpec("data.inspect", {"path": str(tunes), "modality": "music"}),
                             JobContext(JobSpec("data.inspect"), lambda e: None))
    assert inspected["usable"] == 2
    assert sorted(r["file"] for r in inspected["rejected"]) == ["broken.mid", "short.mid"]

    torch.manual_seed(0)
    config = MusicTransformerConfig(**TINY)
    base = save_model(MusicTransformer(config), "music-transformer", config, tmp_path / "base.safetensors")
    code = main(["train", "music", "--data", str(tunes), "--preset", "quick", "--max-steps", "2", "--name", "mine",
                 "--init", str(base), "--events", "--threads", "1"])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and events[-1]["event"] == "finished", events[-1]
    said = [e["message"] for e in events if e["event"] == "info"]
    assert "built a training set of 2 tune(s) from tunes" in said
    assert any(m.startswith("skipped broken.mid: ") and "not a readable MIDI file" in m for m in said)
    assert any(m.startswith("skipped short.mid: ") and "fewer than 2 bars" in m for m in said)


class _Planted:
    """What an attacker would leave in $TMPDIR/music21: unpickling it creates a file (it could run anything)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_music21_never_loads_a_pickle_planted_in_the_shared_temp_folder(tmp_path: Path) -> None:
    pytest.importorskip("music21")
    from music21 import converter

    from studio.ml.data.music_corpus import corpus_items, parse_item

    item = corpus_items(("bach",))[0]
    planted = converter.PickleFilter(item.path).status()[2]  # where music21 looks for its cached pickle
    marker = tmp_path / "code-ran"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(zlib.compress(pickle.dumps(_Planted(marker))))
    try:
        result = parse_item(item)
    finally:
        planted.unlink(missing_ok=True)
    assert not marker.exists(), "music21 unpickled a file from the shared temporary folder"
    assert result["records"], result.get("error")


def test_every_command_searches_the_shared_model_folder(tmp_path: Path, capsys) -> None:
    shared = tmp_path / "team-models"
    write_probe(shared / "team.safetensors", name="team-probe")
    save_settings(Settings(shared_model_dir=str(shared)))
    assert ModelStore().find("team-probe").source == "shared"
    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert "team-probe" in listed and "shared" in listed
    assert main(["models", "verify", "team-probe"]) == 0
    assert "ok      team-probe (shared)" in capsys.readouterr().out
