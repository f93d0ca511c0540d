"""Music tasks: ``music.generate``, ``music.continue`` and ``music.vary``.

Params (all tasks): ``style`` (a preset name or unambiguous prefix), ``key`` ("A minor"), ``bpm``, ``meter``
("4/4"), ``bars``; missing ones come from the style. Optional: ``arrange_seed`` (chords, bass, drums and synth
noise; default the job's seed), ``temperature``, ``top_p`` (model sampling),
``renderer`` ("synth", the default, or "soundfont") and ``soundfont`` (a path; otherwise settings or a Debian
SoundFont). ``music.continue`` and ``music.vary`` add ``notes`` (an earlier payload's notes or a MIDI file's),
``bars_from`` and ``bars_to``: bar numbers counted from 1, inclusive, as a musician says "bars 5-8".

* continue: the melody before ``bars_from`` is kept, bars ``bars_from..bars_to`` are new, and the clip is
  ``bars_to`` bars long (``bars_from`` defaults to the bar after the existing melody).
* vary: melody bars ``bars_from..bars_to`` are regenerated, the rest kept; the clip keeps its length.

The melody comes from the music model (``spec.model``, default "music-transformer") when it is installed; with no
music model installed it comes from the rule-based generator and the recipe says so (``melody_source``).
``spec.model == "rules"`` asks for the rules explicitly. Chords, bass and drums are re-arranged for the whole clip.

FINISHED payload: ``{"rate", "mix": (n, 2) float32, "stems": {part: (n, 2)}, "notes", "chords", "bpm", "bars",
"meter", "key", "recipe"}``; notes are on the straight grid (the style's swing is applied when rendering).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from studio.core.context import JobContext
from studio.core.defaults import DEFAULT_MODELS
from studio.core.errors import BadInputError, ModelFileError
from studio.core.jobs import JobSpec, thaw
from studio.core.music_request import MusicRequest
from studio.core.music_styles import MELODY_FORMS, Style, find_style
from studio.core.music_theory import Key, Meter, parse_key, parse_meter, validate_bars, validate_bpm
from studio.ml.audio import soundfont
from studio.ml.audio.render import RenderedClip, finish, render_clip, stems_from_arrays
from studio.ml.audio.synth import SAMPLE_RATE
from studio.ml.checkpoint import load_model, sha256_file
from studio.ml.music.arrange import Arrangement, arrange, melody_part
from studio.ml.music.rule_melody import rule_melody
from studio.ml.runtime.ort_music import OrtMusicModel
from studio.ml.store import ModelStore
from studio.ml.tasks import task

DEFAULT_MODEL = DEFAULT_MODELS["music"]
RULES = "rules"
RULES_FALLBACK = "rules (no music model installed)"
RULES_CHOSEN = "rules (chosen)"

Note = dict[str, Any]


@dataclass(frozen=True)
class ClipSettings:
    style: Style
    key: Key
    meter: Meter
    bpm: float
    bars: int

    @property
    def beats_per_bar(self) -> float:
        return self.meter.beats_per_bar


def clip_settings(params: Mapping[str, Any], bars: int | None = None) -> ClipSettings:
    """Validated settings; anything not given comes from the style preset."""
    style = find_style(params.get("style") or "chiptune-adventure")
    key = parse_key(params.get("key") or style.key)
    meter = parse_meter(params.get("meter") or style.meter)
    bpm = validate_bpm(params["bpm"] if params.get("bpm") is not None else style.bpm)
    chosen = bars if bars is not None else params.get("bars")
    return ClipSettings(style, key, meter, bpm, validate_bars(style.bars if chosen is None else chosen))


@dataclass
class MelodyModel:
    """Where the melody comes from: a loaded model (name, sha256) or the rules (module None)."""

    module: nn.Module | OrtMusicModel | None
    name: str
    sha256: str
    source: str


def melody_model(spec: JobSpec, ctx: JobContext) -> MelodyModel:
    """The requested music model, or the rules when none is installed (an explicitly named model must exist)."""
    if spec.model == RULES:
        return MelodyModel(None, "", "", RULES_CHOSEN)
    store = ctx.resources.store if ctx.resources is not None else ModelStore()
    name = spec.model or DEFAULT_MODEL
    try:
        entry = store.find(name)
    except ModelFileError:
        if spec.model:
            raise
        return MelodyModel(None, "", "", RULES_FALLBACK)
    if entry.modality and entry.modality != "music":
        raise ModelFileError(f"{name!r} is a {entry.modality} model, not a music model")
    store.verify(entry)

    if ctx.resources is not None:  # torch or onnxruntime, as the runtime setting says (measured when "auto")
        module = ctx.resources.runtimes.load(entry.name, ctx.device)
    else:
        module = load_model(entry.weights, device=ctx.device)[0]
    return MelodyModel(module, entry.name, sha256_file(entry.weights), f"model {entry.name}")


def _sampling(params: Mapping[str, Any]) -> dict[str, float]:
    return {"temperature": float(params.get("temperature", 0.9)), "top_p": float(params.get("top_p", 0.95))}


def _model_progress(ctx: JobContext):
    return lambda fraction, message="": ctx.progress(0.05 + 0.45 * fraction, message or "composing the melody")


def _density_args(clip: ClipSettings) -> dict[str, Any]:
    melody = clip.style.instruments["melody"]
    return {"density": clip.style.melody_density, "octave": melody.octave, "span": clip.style.melody_range}


def melody_range(clip: ClipSettings) -> tuple[int, int]:
    """The melody's MIDI pitch range: from a third below the style's tonic octave, ``melody_range`` semitones up."""
    low = clip.key.degree_pitch(-2, clip.style.instruments["melody"].octave)
    return low, min(127, low + clip.style.melody_range)


def new_melody(clip: ClipSettings, source: MelodyModel, seed: int, params: Mapping[str, Any],
               ctx: JobContext) -> list[Note]:
    form = str(params.get("form") or clip.style.melody_form)
    if form not in MELODY_FORMS:
        raise BadInputError(f"unknown melody form {form!r}: use {' or '.join(MELODY_FORMS)}")
    if source.module is None:
        return rule_melody(clip.key, clip.meter, clip.bars, seed, **_density_args(clip))
    from studio.ml.music import sample

    write = sample.generate_period if form == "period" else sample.generate_melody
    return write(
        source.module, clip.key.name, clip.key.mode, clip.meter.label, round(clip.bpm), clip.bars, seed,
        **_sampling(params), cancel=ctx.check_cancel, on_progress=_model_progress(ctx),
        pitch_range=melody_range(clip))


def _bars_of(melody: Sequence[Note], meter: Meter) -> int:
    end = max((float(n["start"]) + float(n["duration"]) for n in melody), default=0.0)
    return max(1, math.ceil(end / meter.beats_per_bar - 1e-6))


def _input_melody(params: Mapping[str, Any]) -> list[Note]:
    notes = thaw(params.get("notes") or [])
    if not isinstance(notes, list) or not all(isinstance(n, dict) for n in notes):
        raise BadInputError("'notes' must be a list of note dicts {part, pitch, start, duration, velocity}")
    try:
        melody = melody_part(notes)
        for n in melody:
            n["pitch"], n["velocity"] = int(n["pitch"]), int(n["velocity"])
            n["start"], n["duration"] = float(n["start"]), float(n["duration"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"a note is missing a field or has a wrong value ({exc})") from None
    if not melody:
        raise BadInputError("there is no melody to work from: the notes have no melodic part")
    return melody


def _bar_range(params: Mapping[str, Any], default_from: int, default_to: int | None) -> tuple[int, int]:
    raw_from, raw_to = params.get("bars_from"), params.get("bars_to")
    bars_from = validate_bars(default_from if raw_from is None else raw_from)
    if raw_to is None and default_to is None:
        raise BadInputError("say up to which bar to continue ('bars_to')")
    bars_to = validate_bars(default_to if raw_to is None else raw_to)
    if bars_to < bars_from:
        raise BadInputError(f"bars {bars_from}-{bars_to}: the last bar comes before the first")
    return bars_from, bars_to


def _cut_at(melody: list[Note], beat: float) -> list[Note]:
    """The notes that start before ``beat``, a note held past it shortened to end there."""
    kept = [dict(n) for n in melody if n["start"] < beat - 1e-9]
    for n in kept:
        if n["start"] + n["duration"] > beat + 1e-9:
            n["duration"] = beat - n["start"]
    return kept


def continued_melody(clip: ClipSettings, melody: list[Note], bars_from: int, source: MelodyModel, seed: int,
                     params: Mapping[str, Any], ctx: JobContext) -> list[Note]:
    """Keep the melody before ``bars_from`` (1-based) and write new bars up to the clip's end."""
    cut = (bars_from - 1) * clip.beats_per_bar
    kept = _cut_at(melody, cut)
    if source.module is None:
        return kept + rule_melody(clip.key, clip.meter, clip.bars, seed, prefix=kept,
                                  bar_range=(bars_from - 1, clip.bars), **_density_args(clip))
    if not kept:
        return new_melody(clip, source, seed, params, ctx)
    from studio.ml.music import sample

    return sample.continue_notes(
        source.module, kept, clip.bars - bars_from + 1, clip.key.name, clip.key.mode, clip.meter.label,
        round(clip.bpm), seed, **_sampling(params), cancel=ctx.check_cancel, on_progress=_model_progress(ctx),
        clip_bars=bars_from - 1)


def varied_melody(clip: ClipSettings, melody: list[Note], bars_from: int, bars_to: int, source: MelodyModel,
                  seed: int, params: Mapping[str, Any], ctx: JobContext) -> list[Note]:
    """Regenerate melody bars ``bars_from..bars_to`` (1-based, inclusive), keep the others."""
    lo, hi = (bars_from - 1) * clip.beats_per_bar, bars_to * clip.beats_per_bar
    if source.module is None:
        before = _cut_at(melody, lo)
        after = [n for n in melody if n["start"] >= hi - 1e-9]
        new = rule_melody(clip.key, clip.meter, clip.bars, seed * 2 + 1, prefix=before,
                          bar_range=(bars_from - 1, bars_to), reuse_motif=False, **_density_args(clip))
        return before + new + after
    from studio.ml.music import sample

    return sample.vary_bars(
        source.module, melody, bars_from, bars_to, clip.key.name, clip.key.mode, clip.meter.label,
        round(clip.bpm), seed, **_sampling(params), cancel=ctx.check_cancel, on_progress=_model_progress(ctx),
        clip_bars=clip.bars)


def render(arrangement: Arrangement, clip: ClipSettings, seed: int, params: Mapping[str, Any],
           ctx: JobContext) -> tuple[RenderedClip, str]:
    """(rendered loop, renderer description): the synth, or the SoundFont when asked for and available."""
    if params.get("renderer", "synth") == "soundfont":
        settings = ctx.resources.settings if ctx.resources is not None else None
        explicit = params.get("soundfont") or (settings.soundfont_path if settings else "")
        status = soundfont.find_soundfont(explicit or None)
        if status.usable and status.path is not None:
            ctx.progress(0.6, f"rendering with the SoundFont {status.path.name}")
            programs = {part: inst.gm_program for part, inst in clip.style.instruments.items()}
            arrays = soundfont.render_stems(arrangement.notes, programs, clip.bpm, clip.meter, clip.key,
                                            clip.bars, status.path, SAMPLE_RATE)
            ctx.progress(0.9, "normalising loudness")
            return finish(stems_from_arrays(arrays, ctx.device), list(arrays), SAMPLE_RATE), \
                f"soundfont {status.path.name}"
        ctx.note(status.problem)
        renderer = f"synth ({status.problem})"
    else:
        renderer = "synth"

    def on_part(index: int, count: int, part: str) -> None:
        ctx.progress(0.55 + 0.35 * index / count, f"rendering {part}")

    rendered = render_clip(arrangement.notes, clip.style, clip.bpm, clip.meter, clip.bars, seed, ctx.device,
                           SAMPLE_RATE, ctx.check_cancel, on_part)
    return rendered, renderer


def _arrange_seed(spec: JobSpec) -> int:
    """The seed of chords, bass, drums and the synth's noise: the job's seed, unless ``arrange_seed`` keeps a
    clip's own (continue and vary then change only the melody bars asked for, not the drums of the others)."""
    value = spec.params.get("arrange_seed", spec.seed)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInputError(f"arrange_seed must be a whole number from 0, not {value!r}")
    return value


def _finish(spec: JobSpec, ctx: JobContext, clip: ClipSettings, melody: list[Note], source: MelodyModel,
            extra: Mapping[str, Any]) -> dict[str, Any]:
    ctx.progress(0.5, "arranging chords, bass and drums")
    arrange_seed = _arrange_seed(spec)
    arrangement = arrange(melody, clip.style, clip.key, clip.meter, clip.bars, arrange_seed)
    rendered, renderer = render(arrangement, clip, arrange_seed, spec.params, ctx)
    params = {k: v for k, v in thaw(spec.params).items() if k != "notes"}
    recipe = {
        "kind": spec.kind,
        "model": source.name,
        "model_sha256": source.sha256,
        "melody_source": source.source,
        "seed": spec.seed,
        "arrange_seed": arrange_seed,
        "style": clip.style.name,
        "key": clip.key.label,
        "bpm": clip.bpm,
        "meter": clip.meter.label,
        "bars": clip.bars,
        "swing": clip.style.swing,
        "rate": rendered.rate,
        "renderer": renderer,
        "lufs": round(rendered.lufs, 2),
        "true_peak_dbtp": round(rendered.true_peak_db, 2),
        "params": params,
        **extra,
    }
    ctx.progress(1.0, "done")
    return {
        "rate": rendered.rate,
        "mix": rendered.mix,
        "stems": rendered.stems,
        "notes": arrangement.notes,
        "chords": [slot.as_dict() for slot in arrangement.chords],
        "bpm": clip.bpm,
        "bars": clip.bars,
        "meter": clip.meter.label,
        "key": clip.key.label,
        "recipe": recipe,
    }


@task("music.generate")
def generate(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    MusicRequest.from_spec(spec)  # every field checked (a recipe may come from a file)
    clip = clip_settings(spec.params)
    source = melody_model(spec, ctx)
    if source.module is None and source.source == RULES_FALLBACK:
        ctx.note("No music model installed: composing the melody with the rule-based generator.")
    ctx.progress(0.05, "composing the melody")
    melody = new_melody(clip, source, spec.seed, spec.params, ctx)
    return _finish(spec, ctx, clip, melody, source, {})


@task("music.continue")
def continue_clip(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    melody = _input_melody(spec.params)
    probe = clip_settings(spec.params, bars=1)
    existing = _bars_of(melody, probe.meter)
    bars_from, bars_to = _bar_range(spec.params, existing + 1, None)
    clip = clip_settings(spec.params, bars=bars_to)
    source = melody_model(spec, ctx)
    ctx.progress(0.05, f"continuing the melody: bars {bars_from}-{bars_to}")
    melody = continued_melody(clip, melody, bars_from, source, spec.seed, spec.params, ctx)
    return _finish(spec, ctx, clip, melody, source, {"bars_from": bars_from, "bars_to": bars_to})


@task("music.vary")
def vary_clip(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    melody = _input_melody(spec.params)
    probe = clip_settings(spec.params, bars=1)
    total = spec.params.get("bars")
    total = _bars_of(melody, probe.meter) if total is None else total
    clip = clip_settings(spec.params, bars=total)
    bars_from, bars_to = _bar_range(spec.params, 1, clip.bars)
    if bars_to > clip.bars:
        raise BadInputError(f"bars {bars_from}-{bars_to}: the clip has only {clip.bars} bars")
    source = melody_model(spec, ctx)
    ctx.progress(0.05, f"varying bars {bars_from}-{bars_to}")
    melody = varied_melody(clip, melody, bars_from, bars_to, source, spec.seed, spec.params, ctx)
    return _finish(spec, ctx, clip, melody, source, {"bars_from": bars_from, "bars_to": bars_to})


def speed_probe(entry: Any) -> tuple[JobSpec, Callable[[Any, float], float], str]:
    """The doctor's measure of this workspace: a 4-bar clip, in seconds of music per second."""
    spec = JobSpec("music.generate", {"style": "chiptune-adventure", "bars": 4}, seed=1, model=entry.name)
    return spec, lambda result, seconds: len(result["mix"]) / SAMPLE_RATE / seconds, "x real time"
