"""Fine-tuning's pieces: the backbone cut into blocks that give its features, which blocks learn, what is held."""

from __future__ import annotations

import pytest
import torch

from actrec.features.backbones import load_backbone
from actrec.model.heads import build_head
from actrec.model.tuned import FinetuneError, Tuned, blocks, learning_blocks, trunk_is_held


@pytest.fixture(scope="module")
def lite0():
    return load_backbone("efficientnet_lite0", "imagenet", 64)


@pytest.fixture(scope="module")
def resnet():
    return load_backbone("resnet50", None, 64)


@pytest.fixture(scope="module")
def efficientnet():
    return load_backbone("efficientnet_b0", None, 64)


@pytest.mark.parametrize("name", ["lite0", "resnet", "efficientnet"])
def test_the_blocks_one_after_the_other_give_the_backbones_features(name: str, request) -> None:
    backbone = request.getfixturevalue(name)
    images = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        x = backbone.normalize(images)
        for _, block in backbone.blocks():
            x = block(x)
        torch.testing.assert_close(x.mean(dim=(2, 3)), backbone.model(backbone.normalize(images)))


def test_the_last_n_blocks_or_the_named_ones_learn(lite0, resnet) -> None:
    assert learning_blocks(blocks(resnet), 2, "resnet50") == ["layer3", "layer4"]
    assert learning_blocks(blocks(lite0), 3, "efficientnet_lite0") == ["blocks.14", "blocks.15", "head"]
    assert learning_blocks(blocks(resnet), ["layer4", "layer3"], "resnet50") == ["layer3", "layer4"]
    with pytest.raises(FinetuneError, match=r"finetune\.layers names 'layer5', not a block of resnet50; its blocks: "):
        learning_blocks(blocks(resnet), ["layer4", "layer5"], "resnet50")
    with pytest.raises(FinetuneError, match=r"finetune\.layers = 6, but resnet50 has 5 blocks"):
        learning_blocks(blocks(resnet), 6, "resnet50")


def test_only_the_chosen_blocks_learn_and_batch_norms_keep_their_statistics(resnet) -> None:
    backbone = load_backbone("resnet50", None, 64)
    tuned = Tuned(backbone, ["layer4"], build_head("mean", 2048, 3)).train()
    learning = {id(p) for p in tuned.learning_parameters()}
    assert learning == {id(p) for p in backbone.model.layer4.parameters()}
    norms = [m for m in tuned.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms), "batch norms stay in eval mode"
    assert tuned.head.training and not tuned.trunk.training
    before = backbone.model.layer4[0].bn1.running_mean.clone()
    tuned(torch.randint(0, 256, (2, 4, 3, 64, 64), dtype=torch.uint8)).sum().backward()
    assert torch.equal(backbone.model.layer4[0].bn1.running_mean, before)
    assert backbone.model.layer4[0].conv1.weight.grad is not None and backbone.model.layer3[0].conv1.weight.grad is None
    tuned.frozen = True  # the head alone: the blocks run as at inference and get no gradient
    tuned.zero_grad(set_to_none=True)
    tuned.train()
    assert not any(m.training for m in tuned.tail.modules()) and tuned.head.training
    tuned(torch.randint(0, 256, (2, 4, 3, 64, 64), dtype=torch.uint8)).sum().backward()
    assert backbone.model.layer4[0].conv1.weight.grad is None
    assert all(p.grad is not None for p in tuned.head.parameters())


def test_a_family_that_knows_no_blocks_is_refused_in_one_line() -> None:
    backbone = load_backbone("mobilenet_v3_small", None, 64)
    assert backbone.blocks() == []
    with pytest.raises(FinetuneError, match=r"^finetune: no blocks known for backbone mobilenet_v3_small; "):
        blocks(backbone)


def test_the_trunks_output_is_held_where_it_is_smaller_than_the_images(lite0, resnet) -> None:
    """Lite0's last two blocks start from 192 channels at 1/32 of the image: held. ResNet50's layer3 starts from
    512 channels at 1/8: the images are held and the trunk runs each step."""
    head = build_head("mean", 1280, 3)
    assert trunk_is_held(Tuned(lite0, ["blocks.15", "head"], head), 64)
    assert not trunk_is_held(Tuned(resnet, ["layer3", "layer4"], build_head("mean", 2048, 3)), 64)
    assert not trunk_is_held(Tuned(lite0, ["stem"], head), 64), "nothing is frozen before the stem"
