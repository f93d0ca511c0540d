"""The three sprite architectures at their tiny configs: shapes, two training steps, save/load, determinism,
the ONNX graph specs, and the DDIM sampler."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from studio.core.errors import ModelFileError
from studio.ml import registry
from studio.ml.checkpoint import load_model, save_model
from studio.ml.models.sprite_common import images_to_tensor, sample_grid, tensor_to_images
from studio.ml.sampling.ddim import NoiseSchedule, ddim_sample, ddim_timesteps, guided, split_prediction
from studio.ml.sampling.sprites import generate, seeded_generators
from studio.ml.train.sprite_objectives import OBJECTIVES, Hyper
from tests.ml.sprite_helpers import synthetic_sprites

FAMILIES = {"gan": "sprite-gan", "vae": "sprite-vae", "diffusion": "sprite-diffusion"}


def build(family: str, seed: int = 0) -> torch.nn.Module:
    arch = registry.get(FAMILIES[family])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return arch.build(arch.tiny_config())


@pytest.mark.parametrize("family", FAMILIES)
def test_registered_with_tiny_config_and_family(family: str) -> None:
    arch = registry.get(FAMILIES[family])
    assert arch.modality == "sprite" and arch.family == family
    assert arch.onnx, "every sprite architecture declares its ONNX graphs"
    assert build(family).family == family


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_shapes_and_range(family: str) -> None:
    model = build(family).eval()
    labels = torch.tensor([0, 1, 2, 0, 1])
    out = generate(model, labels, seeded_generators(3, 5), steps=3, guidance=2.0)
    assert out.shape == (5, 4, 32, 32)
    assert out.min() >= -1.0 and out.max() <= 1.0
    images = tensor_to_images(out)
    assert images.shape == (5, 32, 32, 4) and images.dtype == np.uint8


def test_vae_encoder_and_reconstruction_shapes() -> None:
    model = build("vae").eval()
    x = images_to_tensor(synthetic_sprites(4)[0])
    labels = torch.tensor([0, 1, 2, 0])
    mean, logvar = model.encode(x, labels)
    assert mean.shape == logvar.shape == (4, model.config.latent_dim)
    x_hat, mean2, _ = model(x, labels, torch.zeros(4, model.config.latent_dim))
    assert x_hat.shape == x.shape and torch.equal(mean, mean2)


@pytest.mark.parametrize("family", FAMILIES)
def test_two_training_steps_give_finite_losses_and_change_weights(family: str) -> None:
    model = build(family).train()
    objective = OBJECTIVES[family](model, Hyper(lr=1e-3), lambda m: m)
    images, labels = synthetic_sprites(8)
    x, y = images_to_tensor(images), torch.from_numpy(labels)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for step in range(2):
        objective.set_step(step)
        losses = objective.train_step(x, y, torch.Generator().manual_seed(step))
        assert losses and all(np.isfinite(v) for v in losses.values()), losses
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed
    validation = objective.validate(model.eval(), x, y, torch.Generator().manual_seed(0))
    assert all(np.isfinite(v) for v in validation.values())


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_round_trip_gives_identical_sprites(family: str, tmp_path) -> None:
    model = build(family, seed=4).eval()
    arch = registry.get(FAMILIES[family])
    path = save_model(model, arch.name, model.config, tmp_path / "m.safetensors", {"categories": ["a", "b", "c"]})
    loaded, config, meta = load_model(path, expect_arch=arch.name)
    assert config == model.config and meta["categories"] == ["a", "b", "c"]
    labels = torch.tensor([0, 2])
    a = generate(model, labels, seeded_generators(9, 2), steps=2)
    b = generate(loaded, labels, seeded_generators(9, 2), steps=2)
    assert torch.equal(a, b)


def test_checkpoint_of_another_architecture_is_refused_clearly(tmp_path) -> None:
    gan = build("gan")
    path = save_model(gan, "sprite-gan", gan.config, tmp_path / "gan.safetensors")
    with pytest.raises(ModelFileError, match="is a 'sprite-gan' model, not 'sprite-vae'"):
        load_model(path, expect_arch="sprite-vae")
    # A sidecar that names another architecture than its weights: the weights do not fit, and it says so.
    vae = build("vae")
    save_model(vae, "sprite-vae", vae.config, tmp_path / "liar.safetensors")
    sidecar = json.loads((tmp_path / "liar.json").read_text())
    sidecar.update(arch="sprite-gan", config=dataclasses.asdict(gan.config))
    (tmp_path / "liar.json").write_text(json.dumps(sidecar))
    with pytest.raises(ModelFileError, match="does not match the sprite-gan architecture"):
        load_model(tmp_path / "liar.safetensors")


@pytest.mark.parametrize("family", FAMILIES)
def test_seeded_determinism_and_per_sprite_seeds(family: str) -> None:
    model = build(family).eval()
    labels = torch.tensor([1, 1, 1, 1])
    first = generate(model, labels, seeded_generators(11, 4), steps=3)
    again = generate(model, labels, seeded_generators(11, 4), steps=3)
    assert torch.equal(first, again)
    other = generate(model, labels, seeded_generators(12, 4), steps=3)
    assert not torch.equal(first, other)
    # Sprite i of a batch is the sprite made alone from seed + i.
    alone = generate(model, labels[:1], seeded_generators(13, 1), steps=3)
    torch.testing.assert_close(first[2:3], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_graph_specs_run_in_torch_with_dynamic_batch(family: str) -> None:
    model = build(family).eval()
    for graph in registry.get(FAMILIES[family]).onnx:
        module = graph.wrap(model)
        for batch in (1, 3):
            inputs = graph.example_inputs(model.config, batch)
            assert len(inputs) == len(graph.inputs_for(model.config)) == len(graph.input_names) + 1  # + tags
            outputs = module(*inputs)
            outputs = outputs if isinstance(outputs, tuple) else (outputs,)
            assert len(outputs) == len(graph.output_names)
            assert all(o.shape[0] == batch for o in outputs)
            assert set(graph.axes_for(model.config)) == {*graph.inputs_for(model.config), *graph.output_names}


def test_tensor_conversion_clears_hidden_colour_and_round_trips() -> None:
    images, _ = synthetic_sprites(3)
    images[0, 0, 0] = [200, 10, 10, 0]  # colour under a fully transparent pixel
    x = images_to_tensor(images)
    assert x.shape == (3, 4, 32, 32) and x.min() >= -1 and x.max() <= 1
    back = tensor_to_images(x)
    assert back[0, 0, 0].tolist() == [0, 0, 0, 0]
    visible = images[..., 3] > 0
    assert np.array_equal(back[visible], images[visible])
    grid = sample_grid(back, columns=2)
    assert grid.shape == (64, 64, 4) and np.array_equal(grid[32:, :32], back[2])


def test_noise_schedules_decrease_and_ddim_timesteps_start_at_the_noisiest() -> None:
    for name in ("cosine", "linear"):
        alphas = NoiseSchedule.named(name, 100).alphas_cumprod
        assert alphas.shape == (100,) and bool((alphas[1:] < alphas[:-1]).all())
        assert 0 < alphas[-1] < 0.05 and alphas[0] > 0.95
    assert ddim_timesteps(1000, 10) == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert ddim_timesteps(10, 1) == [9]
    with pytest.raises(ValueError):
        ddim_timesteps(10, 11)


class OracleNet(torch.nn.Module):
    """Predicts the exact noise (or velocity) that separates x_t from a known clean image."""

    null_label = 9

    def __init__(self, target: torch.Tensor, schedule: NoiseSchedule, prediction: str = "eps") -> None:
        super().__init__()
        self.target = target
        self.schedule = schedule
        self.prediction = prediction
        self.calls: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, t: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        self.calls.append(label.clone())
        a = self.schedule.alpha_at(t, x.device)
        x0 = self.target.expand_as(x)
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        return eps if self.prediction == "eps" else a.sqrt() * eps - (1 - a).sqrt() * x0


@pytest.mark.parametrize(("eta", "prediction"), [(0.0, "eps"), (1.0, "eps"), (0.0, "v"), (1.0, "v")])
def test_ddim_with_a_perfect_predictor_recovers_the_clean_image(eta: float, prediction: str) -> None:
    schedule = NoiseSchedule.cosine(200)
    target = torch.rand(1, 4, 8, 8) * 1.6 - 0.8
    net = OracleNet(target, schedule, prediction)
    gens = seeded_generators(0, 2)
    noise = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    out = ddim_sample(net, schedule, noise, torch.tensor([0, 1]), steps=7, guidance=3.0, eta=eta, generators=gens)
    torch.testing.assert_close(out, target.expand(2, -1, -1, -1), atol=1e-4, rtol=0)
    assert len(net.calls) == 7
    assert net.calls[0].tolist() == [0, 1, 9, 9], "guidance batches the conditional and null-class passes"


def test_ddim_guidance_one_needs_only_the_conditional_pass() -> None:
    schedule = NoiseSchedule.cosine(50)
    net = OracleNet(torch.zeros(1, 4, 8, 8), schedule)
    ddim_sample(net, schedule, torch.randn(3, 4, 8, 8), torch.tensor([0, 1, 2]), steps=4, guidance=1.0)
    assert all(len(c) == 3 for c in net.calls)


def test_velocity_target_and_split_are_consistent() -> None:
    schedule = NoiseSchedule.cosine(100)
    x0, noise = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    t = torch.tensor([0, 50, 99])
    x = schedule.add_noise(x0, noise, t)
    a = schedule.alpha_at(t, x.device)
    got_x0, got_eps = split_prediction(schedule.velocity(x0, noise, t), x, a, "v")
    torch.testing.assert_close(got_x0, x0, atol=1e-4, rtol=0)
    torch.testing.assert_close(got_eps, noise, atol=1e-4, rtol=0)


def test_exported_diffusion_step_returns_eps_for_a_v_model() -> None:
    model = build("diffusion").eval()
    torch.nn.init.normal_(model.conv_out.weight, std=0.1)
    step = registry.get("sprite-diffusion").onnx[0].wrap(model)
    x, t, label, guidance, tags = step_inputs = registry.get("sprite-diffusion").onnx[0].example_inputs(
        model.config, 2)
    torch.nn.init.normal_(model.tag_embed.weight, std=0.5)
    eps = step(*step_inputs)
    v = guided(model, x, t, label, guidance, tags)
    assert not torch.allclose(v, guided(model, x, t, label, guidance))  # the tags are used
    a = model.schedule().alpha_at(t, x.device)
    torch.testing.assert_close(eps, split_prediction(v, x, a, "v")[1])
    assert model.prediction == "v" and eps.abs().sum() > 0


def test_ddim_inpainting_keeps_the_known_pixels_exactly() -> None:
    schedule = NoiseSchedule.cosine(100)
    model = build("diffusion").eval()
    known = images_to_tensor(synthetic_sprites(1)[0])
    redraw = torch.zeros(1, 1, 32, 32)
    redraw[..., 8:24, 8:24] = 1.0
    gens = seeded_generators(5, 1)
    out = ddim_sample(
        model, schedule, model.sample_noise(gens), torch.tensor([0]), steps=4, generators=gens,
        known=known, redraw=redraw,
    )
    keep = redraw.expand_as(out) == 0
    assert torch.equal(out[keep], known[keep])
    with pytest.raises(ValueError):
        ddim_sample(model, schedule, torch.randn(1, 4, 32, 32), torch.tensor([0]), known=known)


def test_tiny_configs_are_small_and_default_configs_fit_the_cpu_budget() -> None:
    for family, name in FAMILIES.items():
        arch = registry.get(name)
        default = arch.build(dataclasses.replace(arch.config_cls(), num_classes=6))
        params = sum(p.numel() for p in default.parameters())
        assert 0.3e6 < params < 4e6, (family, params)
        assert sum(p.numel() for p in build(family).parameters()) < 80_000


@pytest.mark.parametrize("family", FAMILIES)
def test_no_batch_statistics_so_training_and_evaluation_modes_agree(family: str) -> None:
    """Batch norm made the GAN's variety depend on batch statistics: in evaluation mode every seed looked alike."""
    model = build(family)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if family == "gan":
        z, labels = torch.randn(4, model.config.z_dim), torch.tensor([0, 1, 2, 0])
        with torch.no_grad():
            torch.testing.assert_close(model.train()(z, labels), model.eval()(z, labels))
