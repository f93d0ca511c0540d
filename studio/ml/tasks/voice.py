"""``voice.speak``: a script to a timed voice-over (:class:`studio.core.voice.VoiceRequest` in, a
:class:`studio.core.voice.Speech` out), with the voice from the runtime loader."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.core.context import JobContext
from studio.core.errors import ModelFileError
from studio.core.jobs import JobSpec
from studio.core.modalities import get as get_modality
from studio.core.voice import VOICES_MISSING, Speech, VoiceRequest
from studio.ml.tasks import task
from studio.ml.voice.speak import speak


def load_voice(ctx: JobContext, name: str) -> object:
    """The voice ``name`` (default: the modality's) from the runtime loader; a clear message when none is installed."""
    store = ctx.resources.store
    name = name or get_modality("voice").default_model
    if not any(entry.modality == "voice" and entry.name == name for entry in store.entries()):
        missing = _missing_file(store, name)
        if missing:
            raise ModelFileError(f"the voice file {missing} of {name} is missing: run set-up again "
                                 "(bash packaging/setup.sh setup)")
        if not any(entry.modality == "voice" for entry in store.entries()):
            raise ModelFileError(VOICES_MISSING)
    entry = store.find(name)
    if entry.modality != "voice":
        raise ModelFileError(f"{entry.name!r} is a {entry.modality or entry.arch} model, not a voice")
    return ctx.resources.runtimes.load(entry.name, ctx.device)


def _missing_file(store: Any, name: str) -> str:
    """The file a voice's sidecar lists that is not there (a voice whose file was deleted is not listed)."""
    for folder in (store.user, store.shared):
        for sidecar in sorted(Path(folder).glob("**/*.json")) if folder else ():
            try:
                meta = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(meta, dict) and meta.get("modality") == "voice" and meta.get("name") == name:
                files = meta.get("files") if isinstance(meta.get("files"), dict) else {}
                gone = [f for f in files if not (sidecar.parent / str(f)).exists()]
                if gone:
                    return str(gone[0])
    return ""


def describe(meta: dict[str, Any]) -> dict[str, Any]:
    """A voice's list fields beyond the common ones: who speaks, and whether its licence allows commercial use."""
    return {key: str(meta.get(key) or "") for key in ("speaker", "commercial_use", "licence_note", "language")}


@task("voice.speak")
def speak_task(spec: JobSpec, ctx: JobContext) -> Speech:
    request = VoiceRequest.from_spec(spec)
    ctx.progress(0.0, "loading the voice")
    engine = load_voice(ctx, spec.model)
    return speak(engine, request, ctx.progress, ctx.check_cancel, workers=ctx.resources.cpu_threads or 2,
                 note=ctx.note)


def speed_probe(entry: Any) -> tuple[JobSpec, Callable[[Any, float], float], str]:
    """The doctor's measure of this workspace: two lines of copy spoken, in seconds of speech per second."""
    request = VoiceRequest(text="Fresh coffee, delivered to your door every week.\nTry Brewly today.")
    return request.spec(entry.name), lambda speech, seconds: speech.duration / seconds, "x real time"
