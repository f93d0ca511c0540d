"""The model card written beside every music model: what it is, data and licence, training, metrics, limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.core.music_theory import pitch_name
from studio.ml.music import tokens

LIMITS = """- Small and briefly trained: melodies are idiomatic at the scale of a bar or two (dance-tune figures,
  chorale steps) but long-range form (AABB sections, answering phrases, literal repeats) is weak.
- Monophonic: one voice per sequence; the bass part is learnt from the chorale basses only and is not conditioned
  on a melody. Chords and accompaniment come from Studio's arranger, not from this model.
- Style is that of the training tunes; in the public corpora dorian and mixolydian have only ~90 tunes, and meters
  other than 2/4, 3/4, 4/4, 2/2, 6/8 and 9/8 are nearly absent.
- Tempo classes are rough labels (tempo and dance words, metronome marks where given); velocity is not modelled
  (accents follow the meter)."""

METRIC_ROWS = (
    ("NLL per token (nats)", "val_nll", None, "perplexity {val_perplexity:.2f} over {val_tokens} tokens"),
    ("in-key ratio", "in_key_ratio", "in_key_ratio_val", ""),
    ("pitch-class distance (TV)", "pitch_class_tv", None, "train vs validation: {pitch_class_tv_reference:.3f}"),
    ("duration distance (TV)", "duration_tv", None, "train vs validation: {duration_tv_reference:.3f}"),
    ("onset-in-beat distance (TV)", "onset_tv", None, "train vs validation: {onset_tv_reference:.3f}"),
    ("bars repeating an earlier bar", "repeated_bars", "repeated_bars_val", ""),
)


def notes_text(notes: list[dict[str, Any]], meter: str, bars: int) -> str:
    """'A4/1 C5/0.5 | ...': pitch/length in beats, bars split by '|'."""
    beats = tokens.bar_ticks(meter) / tokens.TICKS_PER_BEAT
    return " | ".join(
        " ".join(f"{pitch_name(n['pitch'])}/{n['duration']:g}" for n in notes
                 if bar * beats <= n["start"] < (bar + 1) * beats)
        for bar in range(bars)
    )


def _data_section(data: Mapping[str, Any]) -> str:
    lines = [f"- **{name}**: {text}" for name, text in (data.get("sources") or {}).items()]
    if data.get("excluded"):
        lines.append(f"- Not used: {data['excluded']}.")
    for key in ("split", "augmentation"):
        if data.get(key):
            lines.append(f"- {key.capitalize()}: {data[key]}.")
    return "\n".join(lines) or "- (not recorded)"


def _counts_section(data: Mapping[str, Any]) -> str:
    """The data set's size per split and source (from a `studio data music` manifest)."""
    splits = data.get("splits") or {}
    if not splits:
        return ""
    rows = ["| split | tunes | sequences | bars | notes | sequences by source |", "|---|---|---|---|---|---|"]
    for name, s in splits.items():
        sources = ", ".join(f"{k} {v}" for k, v in s.get("by_source", {}).items())
        rows.append(f"| {name} | {s['tunes']} | {s['sequences']} | {s['bars']} | {s['notes']} | {sources} |")
    built = f" with music21 {data['music21']}" if data.get("music21") else ""
    return f"\nBuilt by `studio data music`{built}:\n\n" + "\n".join(rows) + "\n"


def _metrics_section(metrics: Mapping[str, Any]) -> str:
    if "pitch_class_tv" not in metrics:
        return "\n".join(f"- {k}: {v}" for k, v in metrics.items())
    rows = ["| metric | model | validation tunes | note |", "|---|---|---|---|"]
    for label, key, val_key, note in METRIC_ROWS:
        reference = f"{metrics[val_key]:.3f}" if val_key else ""
        rows.append(f"| {label} | {metrics[key]:.3f} | {reference} | {note.format(**metrics)} |")
    return "\n".join(rows) + (
        f"\n\nGenerated: {metrics['generated_clips']} clips conditioned like validation tunes, sampled with chromatic "
        "notes allowed (so the scale constraint does not decide the in-key ratio). TV = total-variation distance "
        "between histograms (0 same, 1 disjoint); pitch classes are relative to the tonic."
    )


def model_card(
    meta: Mapping[str, Any], samples: Mapping[str, str] | None = None, data: Mapping[str, Any] | None = None
) -> str:
    """Markdown for a music model from its sidecar ``meta`` (training, metrics), optional sample lines and the
    manifest of its data set."""
    config, training = meta.get("config", {}), meta.get("training", {})
    log = training.get("log", [])
    curve = ", ".join(f"{e['step']}: {e['val_nll']:.3f}" for e in log if "val_nll" in e)
    init = f"; fine-tuned from `{training['init_from']}`" if training.get("init_from") else ""
    shape = (f"`{meta.get('arch')}`: {config.get('n_layer')} layers, width {config.get('n_embd')}, "
             f"{config.get('n_head')} heads, context {config.get('block_size')} tokens")
    run = (f"{training.get('wall_seconds', 0) / 60:.1f} minutes, {training.get('steps')} steps of "
           f"{training.get('batch')} windows (preset `{training.get('preset')}`{init}); "
           f"weights kept: {training.get('weights')}")
    text = f"""# {meta.get('name', 'music model')}

A decoder-only Transformer that writes melodies (and bass lines) as note events: bar, position, pitch and duration
tokens conditioned on key, mode, meter, tempo class, bar count and part (vocabulary `{meta.get('vocab', '')}`,
{tokens.VOCAB_SIZE} tokens, {tokens.TICKS_PER_BEAT} ticks per quarter note). Studio samples it under constraints:
exactly the requested bars, notes in the key unless chromaticism is allowed, a first bar on the downbeat and a last
bar that is filled and ends on a tonic-chord tone, so the loop wraps. It also continues clips and re-writes bars.

| | |
|---|---|
| architecture | {shape} |
| licence | {meta.get('licence') or 'weights: Apache-2.0 (the project licence)'} |

## Data

{_data_section(training.get('data') or {})}
{_counts_section(data or {})}
Training sequences: {training.get('train_sequences', '?')}, validation sequences: {training.get('val_sequences', '?')}.

## Training

- command: `{training.get('command') or '(not recorded)'}`
- commit: `{training.get('commit') or '(not recorded)'}`
- hardware: {training.get('hardware') or training.get('device', '?')}
- time: {run}
- validation NLL during training (nats/token): {curve or '(none)'}

## Metrics

{_metrics_section(meta.get('metrics', {}))}
"""
    if samples:
        text += "\n## Sample output\n\nNotes as pitch/length in beats, bars split by `|`:\n\n"
        text += "\n".join(f"- {label}: {line}" for label, line in samples.items()) + "\n"
    return text + f"\n## Known limits\n\n{LIMITS}\n"
