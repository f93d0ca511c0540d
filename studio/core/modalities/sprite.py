"""Sprites: 32x32 pixel art from a GAN, a VAE or a diffusion model."""

from __future__ import annotations

from studio.core.modality import Family, Modality, Ref, TrainChoice, Training


def train_command(choice: TrainChoice) -> list[str]:
    args = ["sprite", "--model", choice.family]
    if choice.grid:
        args += ["--grid", str(choice.grid)]
    if choice.base is not None:
        args += ["--init", choice.base] if choice.base else ["--scratch"]
    return args + choice.common_args()


RUNTIME = Ref("studio.ml.runtime.sprites:ADAPTER")

MODALITY = Modality(
    name="sprite",
    label="Sprites",
    title="Sprites",
    icon="sprites",
    workspace=Ref("studio.ui.workspaces.sprites:SpriteWorkspace"),
    tasks=(Ref("studio.ml.tasks.sprite"),),
    cli=(Ref("studio.cli.sprite"), Ref("studio.cli.eval_sprite"), Ref("studio.cli.data")),
    default_model="sprite-gan",
    speed_probe=Ref("studio.ml.tasks.sprite:speed_probe"),
    opens=(".png",),
    exports=("PNG with the recipe", "Aseprite json-hash sprite sheets"),
    runtimes={"sprite-gan": RUNTIME, "sprite-vae": RUNTIME, "sprite-diffusion": RUNTIME},
    describe=Ref("studio.ml.train.sprite_preflight:describe"),
    training=Training(
        families=(
            Family("GAN (fast, one step)", "gan", "sprite-gan"),
            Family("VAE (variations, blends)", "vae", "sprite-vae"),
            Family("Diffusion (quality)", "diffusion", "sprite-diffusion"),
        ),
        command=train_command,
        inspector=Ref("studio.ml.train.sprite_preflight:inspect"),
        estimator=Ref("studio.ml.train.sprite_preflight:estimate"),
        preview=Ref("studio.ml.train.sprite_preflight:preview"),
        data_hint="a folder of PNGs, or a sprite sheet",
        sample_hint="Samples appear here during training.",
        name_hint="my-sprites",
        base_tooltip="Fine-tune a trained sprite model on your sprites (much better with few of them), or train a "
        "new one",
        sheet_grid=True,
    ),
)
