"""The model manager lists, renames, verifies and deletes models through the real engine."""

from __future__ import annotations

import pytest

from studio.core import paths
from studio.core.jobs import EventType
from studio.core.settings import Settings
from studio.engine.client import Engine
from studio.ui.workspaces.models import ModelManagerWorkspace
from tests.ml.test_model_files import write_probe


def finished(engine):
    return dict(signal=engine.event, check_params_cb=lambda e: e.type.is_terminal and e.kind.startswith("models."),
                timeout=30_000)


@pytest.fixture
def manager(qtbot):
    write_probe(paths.user_models_dir() / "probe.safetensors", name="probe")
    (paths.user_models_dir() / "probe.md").write_text("# Probe model\n\nA card with **metrics**.\n")
    engine = Engine()
    with qtbot.waitSignal(**finished(engine)):
        workspace = ModelManagerWorkspace(engine, Settings())
    qtbot.addWidget(workspace)
    yield workspace
    engine.shutdown()


def names(workspace):
    return [workspace.table.item(r, 0).text() for r in range(workspace.table.rowCount())]


def test_lists_models_and_shows_card(qtbot, manager, save_screenshot):
    assert "probe" in names(manager)
    manager.select_name("probe")
    assert "Probe model" in manager.card.toPlainText()
    assert manager.buttons["Delete"].isEnabled()
    manager.resize(900, 500)
    save_screenshot(manager, "model_manager")


def test_rename_then_delete(qtbot, manager):
    with qtbot.waitSignal(manager.engine.event, check_params_cb=lambda e: e.kind == "models.list" and
                          e.type is EventType.FINISHED, timeout=30_000):
        manager.rename("probe", "renamed-probe")
    assert "renamed-probe" in names(manager) and "probe" not in names(manager)
    with qtbot.waitSignal(manager.engine.event, check_params_cb=lambda e: e.kind == "models.list" and
                          e.type is EventType.FINISHED, timeout=30_000):
        manager.delete("renamed-probe")
    assert "renamed-probe" not in names(manager)
    assert not (paths.user_models_dir() / "probe.safetensors").exists()


def test_failed_import_shows_message(qtbot, manager, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"nope")
    with qtbot.waitSignal(manager.engine.event, check_params_cb=lambda e: e.type is EventType.FAILED, timeout=30_000):
        manager.open_path(bad)
    assert "not a valid ONNX" in manager.status.text()


def test_figures_and_cards_in_plain_words_with_the_technical_names_in_tooltips(qtbot, manager):
    """"train_d 0.633, train_g 1.66", "val_nll", and cards that open on "spectral-norm" and "MSGAN"."""
    columns = [manager.table.horizontalHeaderItem(c).text() for c in range(manager.table.columnCount())]
    assert columns == ["Name", "Makes", "Kind", "From", "Size", "Quality", "Licence"]
    row = names(manager).index("sprite-gan")
    assert manager.table.item(row, 2).text() == "GAN" and manager.table.item(row, 3).text() == "comes with Studio"
    assert "train_d" not in manager.table.item(row, 5).text() and "train_d" in manager.table.item(row, 5).toolTip()
    music = names(manager).index("music-transformer")
    assert manager.table.item(music, 5).text() == "Surprise at tunes (unseen data): 0.838"
    manager.select_name("sprite-gan")
    card = manager.card.toPlainText()
    assert card.startswith("GAN: the fastest, one step per batch, comes with Studio.")
    assert card.index("The technical card follows") < card.index("spectral-norm")
