"""The Sprites workspace against a fake task table: streaming results, open on canvas, undo, recipes, exports."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication

from studio.core.formats import png_meta
from studio.core.formats.sheet import load_sheet
from studio.core.jobs import EventType
from studio.core.settings import Settings
from studio.engine.client import Engine
from studio.ui.widgets.pixel_canvas import Tool
from studio.ui.workspaces.sprites import SpriteWorkspace
from tests.qt import sprite_fakes
from tests.qt.sprite_fakes import TASKS, make_sprite

LEFT = Qt.MouseButton.LeftButton
NONE = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def make_workspace(qtbot):
    """Workspaces on their own engine (with a fake task table); every engine is shut down afterwards."""
    engines: list[Engine] = []

    def make(tasks=TASKS, settings: Settings | None = None) -> SpriteWorkspace:
        engine = Engine(tasks=tasks)
        engines.append(engine)
        listed = lambda e: e.kind == "models.list" and e.type.is_terminal  # noqa: E731
        with qtbot.waitSignal(engine.event, check_params_cb=listed, timeout=60_000):
            workspace = SpriteWorkspace(engine, settings or Settings())
        qtbot.addWidget(workspace)
        workspace.resize(1280, 800)
        workspace.show()
        qtbot.waitExposed(workspace)
        return workspace

    yield make
    assert all(engine.shutdown() for engine in engines)


@pytest.fixture
def workspace(make_workspace):
    return make_workspace()


def finished(kind: str):
    return lambda e: e.kind == kind and e.type.is_terminal


def generate(qtbot, ws: SpriteWorkspace, count: int = 6, seed: int = 100) -> None:
    ws.panel.count.setValue(count)
    ws.panel.seed.setValue(seed)
    with qtbot.waitSignal(ws.engine.event, check_params_cb=finished("sprite.generate"), timeout=10_000) as blocker:
        ws.generate()
    assert blocker.args[0].type is EventType.FINISHED, blocker.args[0].message


def click_result(qtbot, ws: SpriteWorkspace, position: int) -> None:
    rect = ws.results.visualItemRect(ws.results.item(position))
    qtbot.mouseClick(ws.results.viewport(), LEFT, NONE, rect.center())


def test_models_fill_the_panel_with_sprite_models_only(workspace) -> None:
    names = [workspace.panel.model.itemData(i) for i in range(workspace.panel.model.count())]
    assert names == ["sprite-gan", "sprite-vae", "sprite-diffusion"]
    assert workspace.panel.notice.isHidden()
    assert [workspace.panel.category.itemText(i) for i in range(3)] == ["items", "monsters", "walls"]
    assert workspace.panel.steps.isHidden()  # diffusion-only settings
    workspace.select_model("sprite-diffusion")
    assert not workspace.panel.steps.isHidden()
    assert workspace.generate_button.isEnabled()


def test_results_stream_into_the_grid_as_they_are_made(qtbot, workspace, save_screenshot) -> None:
    seen = []
    workspace.engine.event.connect(
        lambda e: seen.append(workspace.results.count()) if e.type is EventType.PARTIAL else None)
    workspace.panel.category.setCurrentText("monsters")
    generate(qtbot, workspace, count=12, seed=100)
    # each partial found the ones before it already in the grid (this slot hears it before the workspace's own call,
    # connected when the job was submitted): the grid grew with every partial, before the job finished
    assert seen == list(range(12))
    results = workspace.results.results()
    assert [r["index"] for r in results] == list(range(12))
    assert np.array_equal(results[3]["rgba"], make_sprite(103))
    assert results[3]["recipe"]["seed"] == 103
    assert results[3]["recipe"]["params"]["category"] == "monsters"
    assert "12" in workspace.results_label.text()
    click_result(qtbot, workspace, 2)
    assert np.array_equal(workspace.canvas.image, make_sprite(102))
    workspace.fit_canvas()
    qtbot.wait(50)  # let the layouts settle before the picture
    save_screenshot(workspace, "sprite_workspace")


def test_click_opens_on_canvas_as_undoable_step_and_arrows_browse_as_one(qtbot, workspace) -> None:
    generate(qtbot, workspace, count=4, seed=7)
    blank = workspace.canvas.image.copy()
    click_result(qtbot, workspace, 1)
    assert np.array_equal(workspace.canvas.image, make_sprite(8))
    assert workspace.canvas.recipe["seed"] == 8
    workspace.step_result(+1)
    workspace.step_result(+1)
    assert np.array_equal(workspace.canvas.image, make_sprite(10))
    workspace.step_result(+1)  # clamped at the last result
    assert workspace.results.currentRow() == 3
    workspace.step_result(-1)
    assert np.array_equal(workspace.canvas.image, make_sprite(9))
    assert workspace.undo_stack.count() == 1  # browsing merges into one step
    workspace.undo_stack.undo()
    assert np.array_equal(workspace.canvas.image, blank)
    assert workspace.canvas.recipe is None
    workspace.undo_stack.redo()
    assert np.array_equal(workspace.canvas.image, make_sprite(9))


def test_generate_sends_the_contract_params(qtbot, workspace) -> None:
    specs = []
    original = workspace.engine.submit
    workspace.engine.submit = lambda spec: specs.append(spec) or original(spec)
    workspace.select_model("sprite-diffusion")
    workspace.panel.set_palette("auto-16")
    workspace.panel.steps.setValue(12)
    generate(qtbot, workspace, count=2, seed=55)
    spec = specs[-1]
    assert (spec.kind, spec.model, spec.seed) == ("sprite.generate", "sprite-diffusion", 55)
    assert dict(spec.params) == {"category": "items", "prompt": "", "count": 2, "palette": "auto-16", "steps": 12,
                                 "guidance": 2.0, "tile": False, "finish": {"enabled": True, "outline": False}}


def test_drawing_on_the_canvas_then_undo(qtbot, workspace) -> None:
    canvas = workspace.canvas
    workspace.set_tool(Tool.PENCIL)
    qtbot.mousePress(canvas, LEFT, NONE, canvas.widget_point(4, 4))
    qtbot.mouseMove(canvas, canvas.widget_point(10, 4))
    qtbot.mouseRelease(canvas, LEFT, NONE, canvas.widget_point(10, 4))
    assert int((canvas.image[..., 3] > 0).sum()) == 7
    workspace.undo_stack.undo()
    assert not canvas.image.any()


def test_variations_blend_and_redraw_selection(qtbot, workspace) -> None:
    generate(qtbot, workspace, count=3, seed=1)
    click_result(qtbot, workspace, 0)
    assert not workspace.variations_button.isEnabled()  # the GAN cannot make variations
    workspace.select_model("sprite-vae")
    workspace.variation_count.setValue(5)
    with qtbot.waitSignal(workspace.engine.event, check_params_cb=finished("sprite.variations"), timeout=10_000):
        workspace.variations_button.click()
    assert workspace.results.count() == 5
    assert "Variations" in workspace.results_label.text()
    workspace.results.setCurrentRow(4)
    workspace.blend_frames.setValue(4)
    with qtbot.waitSignal(workspace.engine.event, check_params_cb=finished("sprite.blend"), timeout=10_000):
        workspace.blend_button.click()
    frames = workspace.results.results()
    assert len(frames) == 4
    assert np.array_equal(frames[0]["rgba"], make_sprite(1))

    workspace.select_model("sprite-diffusion")
    assert not workspace.redraw_button.isEnabled()  # no selection yet
    workspace.canvas.set_tool(Tool.SELECT)
    qtbot.mousePress(workspace.canvas, LEFT, NONE, workspace.canvas.widget_point(2, 2))
    qtbot.mouseMove(workspace.canvas, workspace.canvas.widget_point(5, 6))
    qtbot.mouseRelease(workspace.canvas, LEFT, NONE, workspace.canvas.widget_point(5, 6))
    assert workspace.redraw_button.isEnabled()
    before = workspace.canvas.image.copy()
    steps = workspace.undo_stack.count()
    with qtbot.waitSignal(workspace.engine.event, check_params_cb=finished("sprite.inpaint"), timeout=10_000):
        workspace.redraw_button.click()
    qtbot.waitUntil(lambda: workspace.undo_stack.count() == steps + 1, timeout=2000)
    assert (workspace.canvas.image[2:7, 2:6] == (255, 0, 77, 255)).all()
    assert np.array_equal(workspace.canvas.image[10:], before[10:])
    workspace.undo_stack.undo()
    assert np.array_equal(workspace.canvas.image, before)


def test_blend_with_a_ctrl_clicked_result_blends_two_different_sprites(qtbot, workspace) -> None:
    """Issue 13, bug 2: every click, a Ctrl+click too, opened the result on the canvas, so the canvas and the
    selected result were the same sprite and the blend gave identical frames."""
    workspace.select_model("sprite-vae")
    generate(qtbot, workspace, count=3, seed=1)
    click_result(qtbot, workspace, 0)  # a plain click opens #1 on the canvas
    rect = workspace.results.visualItemRect(workspace.results.item(2))
    qtbot.mouseClick(workspace.results.viewport(), LEFT, Qt.KeyboardModifier.ControlModifier, rect.center())
    assert np.array_equal(workspace.canvas.image, make_sprite(1))  # Ctrl+click picks #3 without opening it
    assert workspace.results.currentRow() == 2 and workspace.blend_button.isEnabled()
    workspace.blend_frames.setValue(4)
    with qtbot.waitSignals([workspace.engine.event], check_params_cbs=[finished("sprite.blend")], timeout=10_000):
        workspace.blend_button.click()
    frames = [r["rgba"] for r in workspace.results.results()]
    assert np.array_equal(frames[0], make_sprite(1)) and np.array_equal(frames[-1], make_sprite(3))
    assert len({f.tobytes() for f in frames}) == 4
    click_result(qtbot, workspace, 1)  # the canvas and the picked result are now the same frame
    found = []
    workspace.status_message.connect(found.append)
    workspace.blend_button.click()
    assert "Ctrl+click another result" in found[-1]


def test_the_side_panel_holds_still_whatever_the_status_says(qtbot, workspace) -> None:
    """Issue 13, bug 5: the status text switched between one and two lines (and the progress bar came and went),
    moving every button below it, so clicks landed on empty space."""
    buttons = (workspace.variations_button, workspace.blend_button, workspace.quantize_button,
               workspace.export_button)

    def places() -> list[int]:
        QApplication.processEvents()
        return [b.mapTo(workspace, b.rect().topLeft()).y() for b in buttons]

    before = places()
    workspace.panel.count.setValue(2)
    with qtbot.waitSignals([workspace.engine.event], check_params_cbs=[lambda e: e.type is EventType.PROGRESS],
                           timeout=10_000):
        workspace.generate()  # progress bar shown, "Generating 2 sprite(s) with sprite-gan…"
    during = places()
    qtbot.waitUntil(lambda: not workspace.progress.isVisible(), timeout=10_000)
    done = places()  # "Generate: 2 sprite(s) ready. Click one to open it on the canvas." (two lines)
    workspace.variations()  # a long error: "Variations needs a VAE model: choose one under Model."
    workspace.status.setText("A message long enough to need three lines or more in a panel this narrow, which "
                             "used to push every button further down the panel than the last one did.")
    error = places()
    assert before == during == done == error
    assert workspace.status.text().endswith("last one did.")  # the whole text stays readable (tooltip)


def test_failed_job_shows_a_readable_message(qtbot, make_workspace) -> None:
    ws = make_workspace(tasks={**TASKS, "sprite.generate": sprite_fakes.fake_fail})
    messages = []
    ws.status_message.connect(messages.append)
    with qtbot.waitSignal(ws.engine.event, check_params_cb=finished("sprite.generate"), timeout=10_000):
        ws.generate()
    assert "not one this model was trained on" in ws.status.text()
    assert "not one this model was trained on" in messages[-1]
    assert not ws.cancel_button.isEnabled()


def test_without_a_sprite_model_the_panel_says_how_to_get_one(qtbot, make_workspace, save_screenshot) -> None:
    ws = make_workspace(tasks={**TASKS, "models.list": sprite_fakes.fake_list_text_only})
    assert ws.panel.notice.isVisible()
    assert "No sprite model is installed" in ws.panel.notice.text()
    assert "<i>Train</i> workspace" in ws.panel.notice.text() and "--" not in ws.panel.notice.text()
    assert not ws.generate_button.isEnabled()
    ws.outline_canvas()  # post-processing and drawing still work
    ws.canvas.set_image(make_sprite(2))
    ws.outline_canvas()
    assert ws.undo_stack.count() == 1
    qtbot.wait(50)
    save_screenshot(ws, "sprite_workspace_no_model")


def test_post_processing_is_undoable_and_noted_in_the_recipe(qtbot, workspace) -> None:
    generate(qtbot, workspace, count=1, seed=4)
    click_result(qtbot, workspace, 0)
    sprite = workspace.canvas.image.copy()
    white_bg = sprite.copy()
    white_bg[sprite[..., 3] == 0] = (255, 255, 255, 255)
    workspace.canvas.replace_image(white_bg, "test background", workspace.canvas.recipe)
    workspace.remove_background_canvas()
    assert np.array_equal(workspace.canvas.image, sprite)
    workspace.palette_bar.load_file(Path(__file__).resolve().parents[2] / "resources/palettes/gameboy-dmg.hex")
    workspace.quantize_canvas()
    colors = {tuple(c) for c in workspace.canvas.image[workspace.canvas.image[..., 3] > 0][:, :3].tolist()}
    assert colors <= {(0x0F, 0x38, 0x0F), (0x30, 0x62, 0x30), (0x8B, 0xAC, 0x0F), (0x9B, 0xBC, 0x0F)}
    assert [s["op"] for s in workspace.canvas.recipe["post"]] == ["remove_background", "quantize"]
    workspace.snap_alpha_canvas()  # already hard alpha: nothing to change, no undo step
    assert "nothing to change" in workspace.status.text()
    workspace.undo_stack.undo()
    workspace.undo_stack.undo()
    assert np.array_equal(workspace.canvas.image, white_bg)
    assert "post" not in workspace.canvas.recipe


def test_png_recipe_round_trip_restores_the_generation_panel(qtbot, tmp_path, workspace, make_workspace) -> None:
    workspace.select_model("sprite-gan")
    workspace.panel.category.setCurrentText("walls")
    workspace.panel.set_palette("pico-8")
    generate(qtbot, workspace, count=5, seed=300)
    click_result(qtbot, workspace, 3)
    path = workspace.save_as(tmp_path / "slime.png")
    assert png_meta.read_recipe(path)["seed"] == 303
    assert "seed: 303" in Image.open(path).text["parameters"]

    other = make_workspace()
    other.select_model("sprite-vae")
    other.panel.seed.setValue(1)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    drop = QDropEvent(QPointF(400, 300), Qt.DropAction.CopyAction, mime, LEFT, NONE)
    other.dropEvent(drop)  # dropping the PNG opens it (Qt delivers real drops only during a real drag)
    assert drop.isAccepted()
    assert np.array_equal(other.canvas.image, make_sprite(303))
    assert other.panel.current_model()["name"] == "sprite-gan"
    assert other.panel.category.currentText() == "walls"
    assert other.panel.palette_combo.currentData() == "pico-8"
    assert other.panel.seed.value() == 303
    assert other.panel.count.value() == 1
    assert "Recipe restored" in other.status.text()


def png_chunk_types(path: Path) -> list[bytes]:
    data = path.read_bytes()
    types, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        types.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return types


def test_metadata_off_writes_no_text_chunks_at_all(qtbot, tmp_path, make_workspace) -> None:
    ws = make_workspace(settings=Settings(write_metadata=False))
    generate(qtbot, ws, count=2, seed=9)
    click_result(qtbot, ws, 0)
    assert ws.canvas.recipe is not None
    saved = ws.save_as(tmp_path / "private.png")
    exported = ws.export_each(tmp_path / "each")
    for path in [saved, *exported]:
        image = Image.open(path)
        assert image.text == {}
        assert not {"studio", "parameters"} & set(image.info)
        assert not {b"tEXt", b"iTXt", b"zTXt"} & set(png_chunk_types(path))
        assert png_meta.read_recipe(path) is None


def test_export_sheet_round_trips_and_selection_limits_it(qtbot, tmp_path, workspace) -> None:
    generate(qtbot, workspace, count=5, seed=20)
    png, js = workspace.export_sheet(tmp_path / "monsters.png")
    assert Image.open(png).size == (3 * 32, 2 * 32)
    data = json.loads(js.read_text())
    assert data["meta"]["image"] == "monsters.png"
    assert data["meta"]["frameTags"] == [{"name": "items", "from": 0, "to": 4, "direction": "forward"}]
    sheet = load_sheet(js)
    assert [name for name, _ in sheet.frames] == [f"{i:03d}_items_{20 + i}" for i in range(5)]
    for i, (_, rgba) in enumerate(sheet.frames):
        assert np.array_equal(rgba, make_sprite(20 + i))

    workspace.results.item(1).setSelected(True)
    workspace.results.item(3).setSelected(True)
    _, js2 = workspace.export_sheet(tmp_path / "picked.png")
    assert [n for n, _ in load_sheet(js2).frames] == ["000_items_21", "001_items_23"]

    each = workspace.export_each(tmp_path / "each")
    assert [png_meta.read_recipe(p)["seed"] for p in each] == [21, 23]

    workspace.open_path(js)  # a sheet opens back into the results
    assert workspace.results.count() == 5


def test_export_with_nothing_to_export_says_so(workspace) -> None:
    assert workspace.export_sheet() is None
    assert "Nothing to export" in workspace.status.text()


def tiny_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb is refused before decoding)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(
        b"IEND", b"")


def test_bad_files_give_clear_messages_and_change_nothing(qtbot, tmp_path, workspace) -> None:
    workspace.canvas.set_image(make_sprite(5))
    before = workspace.canvas.image.copy()
    cases = {
        "corrupt.png": (b"\x89PNG\r\n\x1a\n garbage", "not a readable image"),
        "notes.png": (b"shopping list: eggs", "not a readable image"),
        "bomb.png": (tiny_png_header(20000, 20000), "too large to open safely"),
    }
    for name, (content, expected) in cases.items():
        (tmp_path / name).write_bytes(content)
        workspace.open_path(tmp_path / name)
        assert expected in workspace.status.text(), name
        assert name in workspace.status.text()
    Image.new("RGBA", (300, 300)).save(tmp_path / "big.png")
    workspace.open_path(tmp_path / "big.png")
    assert "256x256" in workspace.status.text()
    workspace.open_path(tmp_path / "missing.png")
    assert "no such file" in workspace.status.text()
    assert np.array_equal(workspace.canvas.image, before)
    assert workspace.undo_stack.count() == 0
    bad = tmp_path / "bad.gpl"
    bad.write_text("GIMP Palette\n1 2 3\nred green blue\n")
    colors = workspace.palette_bar.colors()
    assert not workspace.palette_bar.load_file(bad)
    assert "bad.gpl, line 3" in workspace.status.text()
    assert np.array_equal(workspace.palette_bar.colors(), colors)


def test_paletted_and_greyscale_pngs_open_as_rgba(qtbot, tmp_path, workspace) -> None:
    paletted = Image.new("P", (16, 8))
    paletted.putpalette([0, 0, 0, 255, 0, 77] + [0] * 762)
    paletted.putpixel((3, 2), 1)
    paletted.info["transparency"] = 0
    paletted.save(tmp_path / "p.png", transparency=0)
    workspace.open_path(tmp_path / "p.png")
    assert workspace.canvas.image_size == (16, 8)
    assert workspace.canvas.image[2, 3].tolist() == [255, 0, 77, 255]
    assert workspace.canvas.image[0, 0, 3] == 0
    Image.new("L", (8, 8), 128).save(tmp_path / "grey.png")
    workspace.open_path(tmp_path / "grey.png")
    assert workspace.canvas.image[0, 0].tolist() == [128, 128, 128, 255]
    assert workspace.undo_stack.count() == 2


def test_palette_from_image_and_eyedropper_feed_the_palette_bar(qtbot, workspace) -> None:
    workspace.palette_from_canvas()
    assert "no opaque pixels" in workspace.status.text()
    workspace.canvas.set_image(make_sprite(11))
    workspace.palette_from_canvas()
    assert workspace.palette_bar.choice.currentText() == "From image"
    opaque = workspace.canvas.image[workspace.canvas.image[..., 3] > 0][:, :3]
    assert {tuple(c) for c in workspace.palette_bar.colors().tolist()} == {tuple(c) for c in opaque.tolist()}


def test_words_complete_explain_and_go_into_the_params(qtbot, workspace) -> None:
    panel = workspace.panel
    workspace.select_model("sprite-gan")
    assert panel.prompt.isEnabled() and panel.category.itemData(panel.category.count() - 1) == "__words__"
    panel.prompt.setFocus()
    qtbot.keyClicks(panel.prompt, "ske")
    popup = panel.prompt._completer.popup()
    assert popup.isVisible() and panel.prompt._completer.currentCompletion() == "skeleton"
    panel.prompt._completer.activated.emit("skeleton")
    assert panel.prompt.text() == "skeleton "
    qtbot.keyClicks(panel.prompt, "with a lazer")
    assert "Uses: skeleton." in panel.prompt_hint.text() and "'lazer'" in panel.prompt_hint.text()
    panel.category.setCurrentIndex(panel.category.count() - 1)  # let the words choose the category
    params = panel.params()
    assert params["prompt"] == "skeleton with a lazer" and params["category"] is None
    workspace.select_model("sprite-vae")  # trained without words
    assert not panel.prompt.isEnabled() and panel.params()["prompt"] == ""


def test_tiling_is_offered_for_tile_categories_only(qtbot, workspace) -> None:
    panel = workspace.panel
    workspace.select_model("sprite-gan")
    panel.category.setCurrentIndex(panel.category.findData("items"))
    assert not panel.tile.isEnabled()
    panel.category.setCurrentIndex(panel.category.findData("walls"))
    assert panel.tile.isEnabled()
    panel.tile.setChecked(True)
    assert panel.params()["tile"] is True
    panel.category.setCurrentIndex(panel.category.findData("items"))
    assert panel.params()["tile"] is False
    workspace.tile_button.setChecked(True)
    pixmap = workspace.tile_preview.pixmap()
    width, height = workspace.canvas.image_size
    assert workspace.tile_group.isVisible() and pixmap.width() >= 3 * width and pixmap.height() >= 3 * height


def test_the_finish_of_a_generated_sprite_can_be_undone_on_the_canvas(qtbot, workspace) -> None:
    from studio.core.pixel_art import colour_counts
    from tests.qt.sprite_fakes import noisy

    generate(qtbot, workspace, count=2, seed=40)
    click_result(qtbot, workspace, 0)
    finished_image = workspace.canvas.image.copy()
    workspace.raw_button.click()
    assert np.array_equal(workspace.canvas.image, noisy(make_sprite(40), 40))
    workspace.undo_stack.undo()
    assert np.array_equal(workspace.canvas.image, finished_image)
    workspace.canvas.replace_image(noisy(make_sprite(3), 3), "noisy")
    workspace.finish_button.click()  # the finish works on any canvas image, undoably
    assert colour_counts(workspace.canvas.image[None])[0] <= 16 < colour_counts(noisy(make_sprite(3), 3)[None])[0]
    workspace.undo_stack.undo()
    assert np.array_equal(workspace.canvas.image, noisy(make_sprite(3), 3))
