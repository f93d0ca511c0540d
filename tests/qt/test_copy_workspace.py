"""The Copy workspace: per-line counters and highlights, format switching, files, briefs, streamed generation."""

from __future__ import annotations

import json
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from studio.core.context import JobContext
from studio.core.errors import BadInputError
from studio.core.jobs import EventType, JobSpec
from studio.core.settings import Settings
from studio.engine.client import Engine
from studio.ui import dialogs
from studio.ui.app import apply_theme
from studio.ui.widgets.limit_editor import OVER_LINE_BG
from studio.ui.workspaces.copy import NO_MODEL, CopyWorkspace

ADS = [
    {"headline": ["Fresh beans weekly", "Roasted to order", "Coffee, your way"],
     "description": ["Pick a roast and a rhythm.", "Cancel any time."], "path": ["coffee", "weekly"]},
    {"headline": ["Wake up to better", "Small-batch roasts", "Brewly delivers"],
     "description": ["Beans roasted the day we ship.", "Free shipping."], "path": ["beans", "fresh"]},
]
SEEN: list[JobSpec] = []


def fake_models(spec: JobSpec, ctx: JobContext) -> list[dict]:
    models = [{"name": "tiny-lm", "arch": "llama", "modality": "copy"}, {"name": "sprite-gan", "modality": "sprite"}]
    return [m for m in models if m["modality"] == spec.params.get("modality", m["modality"])]


def no_models(spec: JobSpec, ctx: JobContext) -> list[dict]:
    return []


def fake_generate(spec: JobSpec, ctx: JobContext) -> dict:
    """Streams every line word by word in the contract's PARTIAL shape, then returns the ads."""
    SEEN.append(spec)
    for v, ad in enumerate(ADS[: spec.params["variants"]]):
        for name, lines in ad.items():
            for j, line in enumerate(lines):
                words = line.split(" ")
                for k in range(1, len(words) + 1):
                    ctx.partial({"variant": v, "field": name, "index": j, "text": " ".join(words[:k]),
                                 "done": k == len(words)})
    return {"ads": ADS[: spec.params["variants"]], "recipe": spec.recipe()}


def fake_line(spec: JobSpec, ctx: JobContext) -> dict:
    """Streams the new line word by word in the real task's PARTIAL shape, then returns it."""
    SEEN.append(spec)
    text = f"New take on {spec.params['field']} {spec.params['index'] + 1}"
    words = text.split(" ")
    for k in range(1, len(words) + 1):
        ctx.partial({"variant": 0, "field": spec.params["field"], "index": spec.params["index"],
                     "text": " ".join(words[:k]), "done": k == len(words)})
    return {"text": text, "field": spec.params["field"], "index": spec.params["index"]}


@pytest.fixture
def workspace(qtbot):
    SEEN.clear()
    engine = Engine(tasks={"models.list": fake_models, "copy.generate": fake_generate, "copy.line": fake_line})
    ws = CopyWorkspace(engine, Settings())
    qtbot.addWidget(ws)
    apply_theme(ws)
    ws.resize(1100, 700)
    ws.show()
    qtbot.waitUntil(lambda: ws.model_combo.count() > 0, timeout=30_000)
    yield ws
    assert engine.shutdown()


def messages(ws: CopyWorkspace) -> list[str]:
    found: list[str] = []
    ws.status_message.connect(found.append)
    return found


def put_cursor_on_line(ws: CopyWorkspace, line: int) -> None:
    cursor = QTextCursor(ws.editor.document().findBlockByNumber(line))
    cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock)
    ws.editor.setTextCursor(cursor)


def test_typing_over_the_limit_highlights_the_line_and_turns_the_counter_red(qtbot, workspace, save_screenshot):
    editor = workspace.editor
    assert editor.toPlainText() == "# Headlines\n# Descriptions\n# Paths"  # the empty RSA skeleton
    put_cursor_on_line(workspace, 0)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.keyClicks(editor, "Fresh coffee beans every week")
    assert editor.gutter_text(1) == ("H1", "29/30", False)
    assert editor.over_limit_lines() == []
    qtbot.keyClicks(editor, "!!")
    assert editor.gutter_text(1) == ("H1", "31/30", True)
    assert editor.over_limit_lines() == [1]
    highlighted = [s for s in editor.extraSelections() if s.format.background().color() == OVER_LINE_BG]
    assert [s.cursor.block().blockNumber() for s in highlighted] == [1]
    assert "over the limit" in workspace.summary.text()
    save_screenshot(workspace, "copy_workspace_over_limit")


def test_format_switch_changes_the_limits(qtbot, workspace):
    workspace.set_ad({"headline": ["A headline of thirty-five chars!!!", "Two", "Three"],
                      "description": ["d1", "d2"], "path": []})
    assert workspace.editor.gutter_text(1) == ("H1", "34/30", True)
    workspace.set_format("meta")  # Meta headlines may be 40 characters
    assert workspace.editor.gutter_text(1) == ("H1", "34/40", False)
    assert workspace.editor.over_limit_lines() == []
    workspace.set_format("free")
    assert workspace.editor.gutter_text(1) == ("", "34", False)


def test_set_ad_and_current_ad_round_trip_as_one_undo_step(qtbot, workspace):
    workspace.set_ad(ADS[0])
    assert workspace.current_ad() == ADS[0]
    workspace.undo_stack.undo()
    assert workspace.current_ad() == {"headline": [], "description": [], "path": []}
    workspace.undo_stack.redo()
    assert workspace.current_ad() == ADS[0]


def test_unreadable_file_shows_a_message_and_keeps_the_text(qtbot, workspace, tmp_path):
    workspace.set_ad(ADS[0])
    before = workspace.editor.toPlainText()
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    found = messages(workspace)
    workspace.open_path(bad)
    assert found and "not UTF-8 or UTF-16" in found[-1]
    assert workspace.editor.toPlainText() == before


def test_save_and_open_text_round_trip(qtbot, workspace, tmp_path):
    workspace.set_ad(ADS[1])
    target = tmp_path / "ad.md"
    workspace.save_to(target)
    assert target.read_text(encoding="utf-8").startswith("# Headlines\nWake up to better")
    workspace.set_ad(ADS[0])
    workspace.open_path(target)
    assert workspace.current_ad() == ADS[1]
    assert workspace.path == target


def test_utf16_text_opens(qtbot, workspace, tmp_path):
    path = tmp_path / "utf16.txt"
    path.write_text("# Headlines\nKaffee für alle ☕\r\n", encoding="utf-16")
    workspace.open_path(path)
    assert workspace.current_ad()["headline"] == ["Kaffee für alle ☕"]


def test_generation_streams_into_the_editor_and_variants_can_be_stepped(qtbot, workspace, save_screenshot):
    workspace.set_ad({"headline": ["my own draft"], "description": [], "path": []})
    workspace.brief_form.set_data({"product": "Brewly", "features": ["fresh beans"], "audience": "home baristas",
                                   "tone": "warm", "must_use": ["fresh"], "banned": ["cheap"]})
    workspace.variants_spin.setValue(2)
    workspace.seed_spin.setValue(7)
    streamed: list[str] = []
    workspace.engine.event.connect(
        lambda e: streamed.append(workspace.editor.toPlainText()) if e.type is EventType.PARTIAL else None)
    with qtbot.waitSignal(workspace.engine.event, check_params_cb=lambda e: e.type is EventType.FINISHED,
                          timeout=10_000):
        workspace.generate()
    spec = SEEN[-1]
    assert (spec.kind, spec.model, spec.seed) == ("copy.generate", "tiny-lm", 7)
    assert spec.params["brief"]["product"] == "Brewly" and spec.params["format"] == "google-rsa"
    assert spec.params["variants"] == 2 and spec.params["framework"] == "none"
    assert any("Fresh beans" in text and "weekly" not in text for text in streamed)  # saw a partial line
    assert workspace.current_ad() == ADS[0]
    assert workspace.variant_label.text() == "Variant 1/2"
    save_screenshot(workspace, "copy_workspace_generated")
    workspace.step_result(1)
    assert workspace.current_ad() == ADS[1]
    workspace.step_result(1)
    assert workspace.current_ad() == ADS[0]
    # the whole streamed generation is one undo step back to the draft (after the two variant switches)
    for _ in range(3):
        workspace.undo_stack.undo()
    assert workspace.current_ad()["headline"] == ["my own draft"]


def test_generate_refuses_an_empty_brief_with_a_message(qtbot, workspace):
    found = messages(workspace)
    workspace.generate()
    assert "product" in found[-1] and "empty" in found[-1]
    assert workspace.active_job is None


def test_rewrite_line_replaces_only_that_line(qtbot, workspace):
    workspace.set_ad(ADS[0])
    workspace.brief_form.set_data({"product": "Brewly"})
    put_cursor_on_line(workspace, 2)  # H2
    with qtbot.waitSignal(workspace.engine.event, check_params_cb=lambda e: e.type is EventType.FINISHED,
                          timeout=10_000):
        workspace.rewrite_current_line()
    assert SEEN[-1].params["field"] == "headline" and SEEN[-1].params["index"] == 1
    assert SEEN[-1].params["existing"] == tuple(ADS[0]["headline"])
    qtbot.waitUntil(lambda: workspace.current_ad()["headline"][1] == "New take on headline 2")
    assert workspace.current_ad()["headline"][0] == ADS[0]["headline"][0]


def test_a_rewrite_that_fails_halfway_puts_the_old_line_back(qtbot):
    def failing_line(spec: JobSpec, ctx: JobContext) -> dict:
        ctx.partial({"variant": 0, "field": "headline", "index": 1, "text": "Half a", "done": False})
        raise BadInputError("the model stopped")

    engine = Engine(tasks={"models.list": fake_models, "copy.line": failing_line})
    ws = CopyWorkspace(engine, Settings())
    qtbot.addWidget(ws)
    qtbot.waitUntil(lambda: ws.model_combo.count() > 0, timeout=30_000)
    ws.set_ad(ADS[0])
    ws.brief_form.set_data({"product": "Brewly"})
    put_cursor_on_line(ws, 2)  # H2
    with qtbot.waitSignal(engine.event, check_params_cb=lambda e: e.type is EventType.FAILED, timeout=10_000):
        ws.rewrite_current_line()
    qtbot.waitUntil(lambda: ws.active_job is None, timeout=10_000)
    assert ws.current_ad()["headline"] == ADS[0]["headline"]  # "Half a" is gone, the old line is back
    assert engine.shutdown()


META_ADS = [{"primary": [f"Primary text of ad {n}"], "headline": [f"Ad {n} first", f"Ad {n} second", f"Ad {n} third"]}
            for n in (1, 2, 3)]


def fake_meta(spec: JobSpec, ctx: JobContext) -> dict:
    for v, ad in enumerate(META_ADS):
        for name, lines in ad.items():
            for j, line in enumerate(lines):
                ctx.partial({"variant": v, "field": name, "index": j, "text": line, "done": True})
    return {"ads": META_ADS, "recipe": spec.recipe()}


def test_rewriting_a_line_of_the_third_variant_keeps_the_rest_of_the_ad(qtbot):
    """Issue 13, bug 1: the line job's streamed words reached the ad stream handler, which started a new ad."""
    engine = Engine(tasks={"models.list": fake_models, "copy.generate": fake_meta, "copy.line": fake_line})
    ws = CopyWorkspace(engine, Settings())
    qtbot.addWidget(ws)
    qtbot.waitUntil(lambda: ws.model_combo.count() > 0, timeout=30_000)
    ws.set_format("meta")
    ws.brief_form.set_data({"product": "Headlamp"})
    ws.variants_spin.setValue(3)
    with qtbot.waitSignals([engine.event], check_params_cbs=[lambda e: e.type is EventType.FINISHED],
                           timeout=10_000):
        ws.generate()
    ws.step_result(1)
    ws.step_result(1)
    assert ws.current_ad() == META_ADS[2]
    put_cursor_on_line(ws, 4)  # "# Primary text", T1, "# Headlines", H1, H2
    with qtbot.waitSignals([engine.event], check_params_cbs=[lambda e: e.type is EventType.FINISHED],
                           timeout=10_000):
        ws.rewrite_current_line()
    assert ws.current_ad() == {**META_ADS[2], "headline": ["Ad 3 first", "New take on headline 2", "Ad 3 third"]}
    assert ws.variant_label.text() == "Variant 3/3"
    ws.undo_stack.undo()  # the whole rewrite is one step
    assert ws.current_ad() == META_ADS[2]
    assert engine.shutdown()


def test_brief_json_load_and_save(qtbot, workspace, tmp_path):
    path = tmp_path / "brief.json"
    path.write_text(json.dumps({"product": "Pixel Quest", "features": ["retro", "co-op"], "audience": "gamers",
                                "tone": "playful", "must_use": ["retro"], "banned": ["cheap"]}), encoding="utf-8")
    workspace.load_brief(path)
    assert workspace.brief_form.product.text() == "Pixel Quest"
    assert workspace.brief_form.features.toPlainText() == "retro\nco-op"
    out = tmp_path / "out.json"
    workspace.save_brief(out)
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(path.read_text(encoding="utf-8"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    found = messages(workspace)
    workspace.load_brief(broken)
    assert "not valid JSON" in found[-1]
    assert workspace.brief_form.product.text() == "Pixel Quest"


def test_export_csv_and_refusal_over_the_limit(qtbot, workspace, tmp_path):
    workspace.set_ad(ADS[0])
    workspace.export_to(tmp_path / "ads.csv")
    header = (tmp_path / "ads.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.startswith("Headline 1,Headline 1 position,Headline 2")
    workspace.set_ad({**ADS[0], "headline": ["x" * 31, "b", "c"]})
    found = messages(workspace)
    workspace.export_to(tmp_path / "bad.csv")
    assert "H1 is 31 characters" in found[-1]
    assert not (tmp_path / "bad.csv").exists()


def stalled_generate(spec: JobSpec, ctx: JobContext) -> dict:
    """Writes two headlines and half a word of the third, then waits to be cancelled (Esc)."""
    for j, text in enumerate(("Fresh beans weekly", "Roasted to order")):
        ctx.partial({"variant": 0, "field": "headline", "index": j, "text": text, "done": True})
    ctx.partial({"variant": 0, "field": "headline", "index": 2, "text": "EDUCAT", "done": False})
    while True:
        ctx.check_cancel()
        time.sleep(0.01)


def test_a_cancelled_ad_is_not_exported_without_a_warning(qtbot, tmp_path, monkeypatch):
    """Issue 13, bug 4: after Esc, Ctrl+E said "Exported 3 ad(s)" with no descriptions and a cell "EDUCAT"."""
    engine = Engine(tasks={"models.list": fake_models, "copy.generate": stalled_generate})
    ws = CopyWorkspace(engine, Settings())
    qtbot.addWidget(ws)
    qtbot.waitUntil(lambda: ws.model_combo.count() > 0, timeout=30_000)
    ws.brief_form.set_data({"product": "Brewly"})
    with qtbot.waitSignals([engine.event], check_params_cbs=[lambda e: e.type is EventType.PARTIAL
                                                             and e.payload["text"] == "EDUCAT"], timeout=10_000):
        ws.generate()
    with qtbot.waitSignals([engine.event], check_params_cbs=[lambda e: e.type is EventType.CANCELLED],
                           timeout=10_000):
        ws.cancel()
    assert ws.current_ad()["headline"] == ["Fresh beans weekly", "Roasted to order"]  # the cut line is gone
    asked: list[str] = []
    monkeypatch.setattr(dialogs, "confirm", lambda _parent, _title, text, _yes="": asked.append(text) or False)
    ws.export_to(tmp_path / "ads.csv")
    assert not (tmp_path / "ads.csv").exists()
    assert "Headlines: 2 of at least 3" in asked[0] and "Descriptions: 0 of at least 2" in asked[0]
    monkeypatch.setattr(dialogs, "confirm", lambda *_args: True)  # "Export anyway"
    ws.export_to(tmp_path / "ads.csv")
    assert (tmp_path / "ads.csv").exists()
    assert engine.shutdown()


def test_opening_an_export_restores_its_ads_as_variants(qtbot, workspace, tmp_path):
    path = tmp_path / "ads.json"
    path.write_text(json.dumps({"format": "google-rsa", "ads": ADS, "recipe": {"seed": 3}}), encoding="utf-8")
    workspace.open_path(path)
    assert workspace.current_ad() == ADS[0]
    workspace.step_result(1)
    assert workspace.current_ad() == ADS[1]


def test_without_a_language_model_the_panel_says_how_to_get_one(qtbot, save_screenshot):
    engine = Engine(tasks={"models.list": no_models})
    ws = CopyWorkspace(engine, Settings())
    qtbot.addWidget(ws)
    apply_theme(ws)
    ws.resize(1100, 700)
    ws.show()
    qtbot.waitUntil(lambda: ws.model_warning.isVisible(), timeout=30_000)
    assert ws.model_warning.text() == NO_MODEL
    assert not ws.generate_button.isEnabled()
    save_screenshot(ws, "copy_workspace_no_model")
    assert engine.shutdown()


def test_bare_lines_are_headlines_and_extras_beyond_fifteen_are_flagged(qtbot, workspace):
    workspace.editor.setPlainText("\n".join(f"line {i}" for i in range(20)))
    assert len(workspace.editor.lines) == 20
    assert workspace.editor.gutter_text(14) == ("H15", "7/30", False)
    assert workspace.editor.gutter_text(15)[0] == "extra"
    assert workspace.editor.over_limit_lines() == list(range(15, 20))


def fake_generate_with_angles(spec: JobSpec, ctx: JobContext) -> dict:
    SEEN.append(spec)
    ad = ADS[0]
    angles = {name: [f"angle of {name} {i + 1}" for i in range(len(lines))] for name, lines in ad.items()}
    return {"ads": [ad], "angles": [angles], "fallback": [{"headline": [2]}], "recipe": spec.recipe()}


def test_angles_locks_and_pins_show_and_reach_the_job_and_the_csv(qtbot, tmp_path, save_screenshot):
    SEEN.clear()
    engine = Engine(tasks={"models.list": fake_models, "copy.generate": fake_generate_with_angles,
                           "copy.line": fake_line})
    ws = CopyWorkspace(engine, Settings())
    qtbot.addWidget(ws)
    ws.show()
    qtbot.waitUntil(lambda: ws.model_combo.count() > 0, timeout=30_000)
    ws.brief_form.set_data({"product": "Brewly"})
    with qtbot.waitSignal(engine.event, check_params_cb=lambda e: e.type is EventType.FINISHED, timeout=10_000):
        ws.generate()
    # H3 came from the brief itself: marked in the gutter, explained in its tooltip with its angle
    assert ws.editor.gutter_text(3)[0] == "H3 *"
    h1 = ws.editor.line_info(1)
    assert "Angle: angle of headline 1" in ws._line_note(h1)
    assert "taken from your brief" in ws._line_note(ws.editor.line_info(3)).lower()
    put_cursor_on_line(ws, 1)
    ws.toggle_lock()
    ws.cycle_pin()
    assert ws.editor.gutter_text(1)[0] == "H1 L P1"
    save_screenshot(ws, "copy_workspace_locks_pins")
    with qtbot.waitSignal(engine.event, check_params_cb=lambda e: e.type is EventType.FINISHED, timeout=10_000):
        ws.generate()
    assert SEEN[-1].params["locked"] == {"headline": {"0": ADS[0]["headline"][0]}}
    ws.export_to(tmp_path / "pinned.csv")
    header, row = (tmp_path / "pinned.csv").read_text(encoding="utf-8-sig").splitlines()[:2]
    columns = dict(zip(header.split(","), row.split(","), strict=False))
    assert columns["Headline 1 position"] == "1" and columns["Headline 2 position"] == ""
    put_cursor_on_line(ws, ws.editor.document().blockCount() - 1)  # a path cannot be pinned
    found = messages(ws)
    ws.cycle_pin()
    assert "cannot be pinned" in found[-1]
    assert engine.shutdown()
