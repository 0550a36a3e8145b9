"""Card of ``unet3d``: the volumetric U-Net of Kabulov on brain crops resampled to 160x160x96."""

from __future__ import annotations

from ..card import CategoricalParam, Claim, FloatParam, IntParam, MethodCard, Recipe
from ..registry import register

_SOURCE = "3D U-Net paper, Section III (Results and Discussion)"
_DATA = "256 T1/T2/FLAIR images of MS patients (private)"
_UNIT_NOTE = (
    "whole brain volumes (the network segments the whole 160x160x96 crop); the paper does not say whether it "
    "averaged per image or pooled, nor whether it scored on the resampled crop or the native grid"
)

CARD = register(
    MethodCard(
        name="unet3d",
        title="3D U-Net on the brain crop resampled to 160x160x96 (Kabulov)",
        citation=(
            "T. Kabulov, 'Deep Learning Methods for Multiple Sclerosis Lesions Segmentation on MRI Data', "
            "Belarusian State University, Minsk (2025); network: O. Cicek et al., '3D U-Net: Learning Dense "
            "Volumetric Segmentation from Sparse Annotation', MICCAI 2016, arXiv:1606.06650"
        ),
        input_kind="3D",
        modalities=("flair",),
        adapter="msbench.methods.unet3d.adapter:UNet3dAdapter",
        defaults={
            "lr": 1e-4,
            "weight_decay": 0.0,
            "init_prior": 0.01,
            "bce_weight": 0.5,
            "dice_smooth": 1e-5,
            "batch_dice": False,
            "plateau_factor": 0.1,
            "plateau_patience": 5,
            "plateau_metric": "val_dice",
            "upper_percentile": 100.0,
            "crop_margin": 2,
            "input_shape": (160, 160, 96),
            "base_width": 32,
            "levels": 3,
            "blur_sigma": 0.5,
            "sharpen_sigma": 1.0,
            "sharpen_amount": 1.0,
            "flip_prob": 0.5,
            "flip_axes": (0, 1),
            "brightness_prob": 0.5,
            "brightness": 0.1,
            "contrast_prob": 0.5,
            "contrast": 0.1,
            "noise_prob": 0.5,
            "noise_std": 0.02,
            "threshold": 0.5,
            "min_lesion_voxels": 0,
        },
        search_space={
            "lr": FloatParam(1e-5, 1e-3, log=True),
            "bce_weight": FloatParam(0.1, 0.9),
            "base_width": CategoricalParam((16, 32)),
            "blur_sigma": FloatParam(0.0, 1.5),
            "sharpen_amount": FloatParam(0.0, 2.0),
            "sharpen_sigma": FloatParam(0.5, 3.0),
            "noise_std": FloatParam(0.0, 0.05),
            "threshold": FloatParam(0.3, 0.7),
            "min_lesion_voxels": IntParam(0, 10),
        },
        recipes={
            "smoke": Recipe(
                epochs=10,
                batch_size=2,
                iterations_per_epoch=10,
                patience=None,
                overrides={
                    "input_shape": (40, 48, 40),
                    "base_width": 8,
                    "lr": 1e-3,
                    "plateau_patience": 2,
                },
            ),
            "quick": Recipe(
                epochs=30,
                batch_size=2,
                iterations_per_epoch=20,
                patience=10,
                overrides={"lr": 3e-4, "plateau_patience": 3},
            ),
            "paper": Recipe(epochs=120, batch_size=2, iterations_per_epoch=None, patience=None),
        },
        claims=(
            Claim(
                "dice",
                0.78,
                _DATA,
                "by patient: 204 training / 32 validation images",
                _SOURCE,
                private_data=True,
                note="validation set",
                unit="volume",
                aggregation="not_reported",
                msbench_metric="dice",
                unit_note=_UNIT_NOTE,
            ),
            Claim(
                "dice",
                0.72,
                _DATA,
                "by patient: 20 test images",
                _SOURCE,
                private_data=True,
                note="test set",
                unit="volume",
                aggregation="not_reported",
                msbench_metric="dice",
                unit_note=_UNIT_NOTE,
            ),
        ),
        choices={
            "modalities": "the paper uses T1, T2 and FLAIR; msbench runs FLAIR only by default (the common "
            "protocol) and T1+T2+FLAIR when asked (--modalities flair,t1,t2); the input channels follow.",
            "input_shape": "160x160x96 as in the paper: the brain's bounding box (+crop_margin) is resampled "
            "(trilinear) to that grid, the axial axis last; predictions are resampled back and pasted into the "
            "case's grid.",
            "base_width / levels": "Cicek et al. 2016: 3 poolings, 32 channels first, doubled before each pooling "
            "(19.07 M parameters for 3 inputs and 3 classes, as Cicek reports).",
            "blur_sigma": "Gaussian blur kernel not given; sigma 0.5 voxel (light denoising).",
            "sharpen_sigma / sharpen_amount": "'contrast enhancing with a specific 3D kernel' is not specified; an "
            "unsharp mask with a 3D Gaussian (sigma 1 voxel, amount 1), clipped to [0, 1].",
            "bce_weight": "lambda was grid-searched in the paper but its value is not reported; 0.5 by default, "
            "tunable in [0.1, 0.9].",
            "plateau_metric": "the lr is divided by 10 after 5 epochs 'with no growth of the model metrics': "
            "ReduceLROnPlateau on validation Dice (mode max), factor 0.1, patience 5.",
            "flip_axes": "horizontal and vertical flips of the axial image: axes 0 (left-right) and 1 "
            "(anterior-posterior), each with probability 0.5.",
            "brightness / contrast / noise": "strengths not given; intensity shift +-0.1, intensity scale "
            "1 +- 0.1, Gaussian noise sd 0.02, each with probability 0.5 (MONAI transforms).",
            "epochs": "120 epochs of one pass over the training volumes at batch 2 (the paper's '~50,000 "
            "iterations' does not match 204 images / 2 x 120; the epoch count is the stated one). Weights of the "
            "epoch with the best validation Dice are kept.",
            "threshold": "probability 0.5 (not given).",
            "init_prior": "not given; the output bias starts at the logit of 0.01 (Lin et al. 2017).",
            "smoke": "a 40x48x40 grid, base width 8, lr 1e-3, 10 x 10 steps of 2 volumes. The lr (3e-3 before) was "
            "chosen on the validation patient among the card's smoke_candidates; `msbench methods show unet3d` prints "
            "the selection's record. The margin is small: one seed, one patient.",
            "quick": "the paper's grid and network, 30 epochs of 20 steps at lr 3e-4 with early stopping.",
        },
        family="unet3d",
        smoke_candidates={"lr/3": {"lr": 1e-3 / 3}},  # a third of the smoke recipe's lr
    )
)
