"""Card of ``smp_unet2d``: a 2D U-Net from segmentation-models-pytorch with a timm encoder (library baseline)."""

from __future__ import annotations

from ..card import CategoricalParam, FloatParam, MethodCard, Recipe
from ..registry import register

CARD = register(
    MethodCard(
        name="smp_unet2d",
        title="2D U-Net (segmentation-models-pytorch, timm ResNet-18 encoder, random init) on axial slices",
        citation=(
            "P. Iakubovskii, Segmentation Models Pytorch, github.com/qubvel-org/segmentation_models.pytorch; "
            "O. Ronneberger, P. Fischer, T. Brox, U-Net, MICCAI 2015; msbench library baseline, no paper claims"
        ),
        input_kind="2D",
        modalities=("flair",),
        adapter="msbench.methods.smp_unet2d.adapter:SmpUnet2dAdapter",
        defaults={
            "encoder": "tu-resnet18",
            "encoder_depth": 5,
            "decoder_channels": (256, 128, 64, 32, 16),
            "n_slices": 1,
            "window_mm": 160.0,
            "input_zoom": 1,
            "bn_recalibration_batches": 0,
            "upper_percentile": 100.0,
            "positive_fraction": 0.5,
            "optimizer": "adam",
            "lr": 1e-3,
            "weight_decay": 1e-5,
            "bce_weight": 0.5,
            "dice_smooth": 1.0,
            "predict_batch_size": 32,
        },
        search_space={
            "lr": FloatParam(1e-4, 1e-2, log=True),
            "weight_decay": FloatParam(1e-7, 1e-3, log=True),
            "positive_fraction": FloatParam(0.0, 0.75),
            "bce_weight": FloatParam(0.0, 1.0),
            "encoder": CategoricalParam(("tu-resnet18", "tu-resnet34")),
        },
        recipes={
            "smoke": Recipe(
                epochs=6,
                batch_size=8,
                iterations_per_epoch=20,
                overrides={
                    "window_mm": 192.0,
                    "input_zoom": 2,
                    "bn_recalibration_batches": 10,
                    "encoder_depth": 3,
                    "decoder_channels": (64, 32, 16),
                    "positive_fraction": 0.75,
                    "bce_weight": 0.2,
                },
            ),
            "quick": Recipe(epochs=20, batch_size=16, iterations_per_epoch=100),
            "paper": Recipe(epochs=100, batch_size=16, iterations_per_epoch=250),
        },
        choices={
            "network": "segmentation_models_pytorch.Unet with the timm ResNet-18 encoder ('tu-resnet18'), "
            "encoder_weights=None (no pretrained weights ship inside a registry package, and runs download nothing), "
            "one input channel per modality, one output channel of logits.",
            "slices": "Single axial slices through the same pipeline as the FC-DenseNet family (shared code): brain "
            "bounding box, [0, 1] min-max inside the brain, an in-plane window centred on the brain box of at "
            "least 160 mm and the whole brain (in voxels of the case's spacing, a multiple of 2^encoder_depth).",
            "positive_fraction": "Half of each batch drawn from lesion-containing slices (class imbalance control).",
            "loss": "bce_weight * BCE + (1 - bce_weight) * soft Dice over the whole batch (smoothing dice_smooth); "
            "batch Dice rather than per-slice Dice because most slices hold no lesion.",
            "optimizer": "Adam lr 1e-3, weight decay 1e-5; best epoch by validation Dice. 'paper' has no paper here: "
            "it is a longer run (100 x 250 steps of 16 slices).",
            "smoke": "Encoder depth 3 (decoder 64-32-16, 0.88 M parameters), 192 mm window (3 mm, 61x73 in-plane), "
            "120 steps of 8 slices, 3/4 of them with lesion, 0.2 BCE + 0.8 soft Dice and slices zoomed 2x "
            "(input_zoom). The BCE weight 0.2 (soft Dice alone before) and the zoom were chosen on the validation "
            "patient among the card's smoke_candidates; `msbench methods show smp_unet2d` prints the selection's "
            "record.",
            "bn_recalibration_batches": "0 (PyTorch's running averages) on quick and paper; 10 on smoke, where 120 "
            "steps at lr 1e-3 move the weights faster than the averages (momentum 0.1) follow. On fold 0 the same "
            "weights scored far lower with the running averages than with statistics recomputed from 10 training "
            "batches.",
            "input_zoom": "1 (none) on quick and paper. The ResNet stem reaches its first skip at half resolution "
            "and its second at a quarter, so the decoder has no full-resolution feature; on a coarse grid a lesion "
            "of a few voxels is lost. input_zoom z enlarges each slice z times (bilinear) before the network and "
            "average-pools the logits back.",
        },
        family="library-baselines",
        smoke_candidates={"bce_weight 0.2": {"bce_weight": 0.2}, "input_zoom 1": {"input_zoom": 1}},
    )
)
