"""Defaults a user expects: a fresh seed for each Generate (shown and lockable), the bundled model of each family
first in every list, and one copy default for the app and the command line."""

from __future__ import annotations

import json
import shutil

import pytest

from studio.cli import build_parser
from studio.core import paths
from studio.core.defaults import copy_defaults, default_model, model_order
from studio.core.jobs import EventType, JobSpec
from studio.core.settings import Settings
from studio.engine.client import Engine
from studio.ui.main_window import MainWindow
from tests.qt.workspace_fakes import TASKS


@pytest.fixture
def window(qtbot):
    specs: list[JobSpec] = []

    def recording(fn):
        return lambda spec, ctx: specs.append(spec) or fn(spec, ctx)

    tasks = {kind: recording(fn) for kind, fn in TASKS.items()}
    win = MainWindow(tasks=tasks)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.workspace("Sprites").panel.model.count() > 0
                    and win.workspace("Copy").model_combo.count() > 0, timeout=30_000)
    win.specs = specs
    yield win
    win.autosaver = None
    win.close()


def generate_twice(qtbot, window: MainWindow, title: str, kind: str) -> list[JobSpec]:
    workspace = window.workspace(title)
    if title == "Copy":
        workspace.brief_form.set_data({"product": "Trail headlamp"})
    for _ in range(2):
        with qtbot.waitSignals([window.engine.event], timeout=10_000,
                               check_params_cbs=[lambda e: e.kind == kind and e.type is EventType.FINISHED]):
            workspace.generate()
    return [s for s in window.specs if s.kind == kind][-2:]


@pytest.mark.parametrize(("title", "kind", "seed_of"), [
    ("Sprites", "sprite.generate", lambda w: w.panel.seed),
    ("Copy", "copy.generate", lambda w: w.seed_spin),
    ("Music", "music.generate", lambda w: w.seed_spin),
])
def test_each_generate_gets_a_fresh_seed_that_is_shown_and_can_be_locked(qtbot, window, title, kind, seed_of):
    seed = seed_of(window.workspace(title))
    first, second = generate_twice(qtbot, window, title, kind)
    assert first.seed != second.seed, "Generate must not repeat the same output"
    assert seed.value() == second.seed  # the seed of what is on screen can be read off
    seed.lock_button.click()  # keep it
    third, fourth = generate_twice(qtbot, window, title, kind)
    assert third.seed == fourth.seed == second.seed
    seed.lock_button.click()
    seed.setValue(4242)  # typing a seed means "this one": it locks
    assert seed.locked
    fifth, _ = generate_twice(qtbot, window, title, kind)
    assert fifth.seed == 4242


def test_music_continue_keeps_the_clip_arrangement_seed(qtbot, window):
    music = window.workspace("Music")
    generate_twice(qtbot, window, "Music", "music.generate")
    arrange_seed = music.clip.recipe["seed"]
    with qtbot.waitSignals([window.engine.event], timeout=10_000,
                           check_params_cbs=[lambda e: e.kind == "music.continue" and e.type.is_terminal]):
        music.continue_clip()
    spec = window.specs[-1]
    assert spec.params["arrange_seed"] == arrange_seed and spec.seed != arrange_seed


def listed(qtbot, engine: Engine, modality: str) -> list[str]:
    """The names the real ``models.list`` task gives for ``modality``, in order."""
    spec = JobSpec("models.list", {"modality": modality})
    results: list = []
    engine.event.connect(lambda e: results.append(e.payload) if e.job_id == spec.job_id and e.type.is_terminal
                         else None)
    with qtbot.waitSignals([engine.event], timeout=120_000,
                           check_params_cbs=[lambda e: e.job_id == spec.job_id and e.type.is_terminal]):
        engine.submit(spec)
    return [m["name"] for m in results[0]]


def test_lists_open_on_the_bundled_default_not_the_first_name(qtbot):
    """A user's test model ("a-test-gan") sorted first and became the default. Real models.list task and store,
    with one user model added."""
    user = paths.user_models_dir()
    shutil.copy(paths.bundled_models_dir() / "sprite-gan.safetensors", user / "a-test-gan.safetensors")
    meta = json.loads((paths.bundled_models_dir() / "sprite-gan.json").read_text(encoding="utf-8"))
    (user / "a-test-gan.json").write_text(json.dumps({**meta, "name": "a-test-gan"}), encoding="utf-8")
    engine = Engine(Settings(device="cpu"))
    names = listed(qtbot, engine, "sprite")
    assert names[0] == default_model("sprite") == "sprite-gan"
    bundled = [names.index(n) for n in ("sprite-gan", "sprite-vae", "sprite-diffusion")]
    assert max(bundled) < names.index("a-test-gan")  # every bundled family before the user's own
    assert listed(qtbot, engine, "music")[0] == "music-transformer"
    assert engine.shutdown()


def test_copy_list_order_puts_the_default_adapter_first_then_the_bundled_then_the_base_and_the_users():
    entries = [{"name": "copy-lora-debian", "modality": "copy", "source": "bundled", "family": "lora"},
               {"name": "a-brand-voice", "modality": "copy", "source": "user", "family": "lora"},
               {"name": "smollm2-135m-instruct", "modality": "copy", "source": "user", "family": ""},
               {"name": "copy-ads", "modality": "copy", "source": "bundled", "family": "lora"}]
    assert default_model("copy") == copy_defaults().model == "copy-ads"
    assert [e["name"] for e in sorted(entries, key=model_order)] == [
        "copy-ads", "copy-lora-debian", "smollm2-135m-instruct", "a-brand-voice"]


def test_the_copy_workspace_opens_on_the_cli_default_model_and_sampling(qtbot, window):
    copy = window.workspace("Copy")
    defaults = copy_defaults("google-rsa")
    args = build_parser().parse_args(["generate", "copy", "--brief", "b.json"])
    assert args.model is None and args.temperature is None  # the CLI fills them from copy_defaults too
    assert (copy.temperature_spin.value(), copy.top_p_spin.value()) == (defaults.temperature, defaults.top_p)
    assert copy.model_combo.currentData() == "tiny-lm"  # the only one listed here


def test_the_copy_workspace_selects_the_default_even_when_it_is_not_listed_first(qtbot):
    alphabetical = [{"name": "copy-lora-debian", "modality": "copy"}, {"name": "copy-ads", "modality": "copy"}]
    engine = Engine(tasks={"models.list": lambda spec, ctx: alphabetical})
    from studio.ui.workspaces.copy import CopyWorkspace

    copy = CopyWorkspace(engine, Settings())
    qtbot.addWidget(copy)
    qtbot.waitUntil(lambda: copy.model_combo.count() == 2, timeout=30_000)
    assert copy.model_combo.currentData() == copy_defaults("google-rsa").model
    copy.model_combo.setCurrentIndex(0)
    copy.model_combo.activated.emit(0)  # the user picks the adapter: it stays picked
    copy.set_format("meta")
    with qtbot.waitSignal(engine.event, timeout=30_000,  # the workspace's own call hears it first
                          check_params_cb=lambda event: event.kind == "models.list" and event.type.is_terminal):
        copy.refresh_models()
    assert copy.model_combo.currentData() == "copy-lora-debian"
    assert engine.shutdown()
