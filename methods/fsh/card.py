"""Card of ``fsh``: F.sh (3DR2AUNet), the 3D recurrent-residual attention U-Net of Esmaeili Shafaei."""

from __future__ import annotations

from ..card import CategoricalParam, Claim, FloatParam, IntParam, MethodCard
from ..engine.defaults import PATCH_DEFAULTS, patch_recipes
from ..registry import register

_PAPER = "F.sh paper, Section III.A (Quantitative Results)"
_DATA = "70 MS patients, FLAIR, Siemens Avanto 1.5 T (private)"
_SPLIT = "not reported (training/validation curves only; no test split described)"
_UNIT_NOTE = (
    "the paper trains and evaluates on 64^3 patches and does not say whether its '3D Dice' and voxel metrics are "
    "over whole volumes or over its (lesion-containing) patches, nor how it averaged; msbench's whole-volume, "
    "per-scan key is shown beside it, not like for like"
)

CARD = register(
    MethodCard(
        name="fsh",
        title="F.sh (3DR2AUNet): 3D recurrent residual attention U-Net on FLAIR patches",
        citation=(
            "M. Esmaeili Shafaei, 'F.sh: A 3D Recurrent Residual Attention U-Net for Automated Multiple Sclerosis "
            "Lesion Segmentation', Massachusetts Institute of Technology (venue and year are not stated in the paper "
            "text)"
        ),
        input_kind="3D",
        modalities=("flair",),
        adapter="msbench.methods.fsh.adapter:FshAdapter",
        defaults={
            **PATCH_DEFAULTS,
            "base_width": 16,
            "recurrence_steps": 2,
            "upsample": "upsample",
            "norm": "batch",
        },
        search_space={
            "lr": FloatParam(1e-5, 1e-3, log=True),
            "base_width": CategoricalParam((8, 16, 32)),
            "recurrence_steps": IntParam(1, 3),
            "upsample": CategoricalParam(("upsample", "transpose")),
            "norm": CategoricalParam(("batch", "instance")),
            "bce_weight": FloatParam(0.2, 0.8),
            "positive_fraction": FloatParam(0.5, 1.0),
            "rotate_prob": FloatParam(0.0, 0.5),
            "elastic_prob": FloatParam(0.0, 0.5),
            "plateau_patience": IntParam(3, 10),
            "threshold": FloatParam(0.3, 0.7),
            "min_lesion_voxels": IntParam(0, 10),
        },
        recipes=patch_recipes(
            {"base_width": 8, "recurrence_steps": 1, "upsample": "transpose", "bce_weight": 0.2, "norm": "instance"}
        ),
        claims=tuple(
            Claim(
                metric,
                value,
                _DATA,
                _SPLIT,
                _PAPER,
                private_data=True,
                note=note,
                unit="not_reported",
                aggregation="not_reported",
                msbench_metric=key,
                comparable=False,
                unit_note=_UNIT_NOTE,
            )
            for metric, value, key, note in (
                ("dice", 0.92, "dice", "'3D Dice score'"),
                ("sensitivity", 0.90, "sensitivity", ""),
                ("specificity", 0.9998, "specificity", ""),
                ("ppv", 0.95, "ppv", "reported as precision"),
                ("f1", 0.92, "dice", "voxel-wise F1, equal to Dice"),
            )
        ),
        choices={
            "base_width": "not given; 16 channels at the first level (16-256 over five levels, about 7.2 M "
            "parameters) fits 64^3 patches on the paper's 8 GB GTX 1650; the R2AttU-Net reference uses 64 in 2D.",
            "recurrence_steps": "not given; t=2 as in R2U-Net (Alom et al. 2018), which F.sh's 3DR2CL block follows.",
            "upsample": "not given; trilinear up-sampling + 3x3x3 conv+BN+ReLU as in the R2AttU-Net reference "
            "implementation (LeeJunHyun/Image_Segmentation); 'transpose' uses a 2x2x2 transposed convolution.",
            "attention gates": "Oktay et al. 2018 additive gates on all four skip connections, intermediate width "
            "half the skip's width, as in the Attention U-Net reference.",
            "batch_size": "not given; 2 patches of 64^3 per step (what an 8 GB GPU holds for this network).",
            "plateau_patience": "not given; PyTorch's ReduceLROnPlateau default of 10 epochs, on the validation "
            "loss with factor 0.5 as the paper states.",
            "positive_fraction": "the paper keeps patches that contain lesion; 1.0 draws only such grid patches "
            "(64^3, stride 32); lower values mix in any grid patch.",
            "rotate_prob / rotate_deg": "not given; rotation with probability 0.2 up to +-15 degrees per axis "
            "(nnU-Net applies rotations with probability 0.2).",
            "flip_prob": "not given; each axis flipped with probability 0.5 (nnU-Net's mirroring).",
            "elastic_prob / elastic_sigma / elastic_magnitude": "not given; MONAI Rand3DElasticd with probability "
            "0.2, sigma 5-8 and magnitude 100-200 voxels (MONAI's 3D tutorial values).",
            "upper_percentile": "the paper scales intensities to [0, 1]; 100 is plain min-max over the brain.",
            "crop_margin": "volumes are cropped to the brain's bounding box (+2 voxels) before patching; patches "
            "of pure background carry no lesion and the crop leaves predictions inside the brain unchanged.",
            "blend": "inference reuses the training grid (64^3, stride 32, overlap 0.5) and averages overlapping "
            "windows (MONAI sliding_window_inference, constant blending).",
            "threshold": "probability 0.5 (not given).",
            "init_prior": "not given; the output bias starts at the logit of 0.01 (Lin et al. 2017) so that the "
            "imbalanced first steps are not spent unlearning a 0.5 lesion probability.",
            "norm": "batch (the paper's 3DR2CL has batch normalisation); 'instance' (InstanceNorm3d with affine "
            "weights) is tunable and used on smoke, where batch statistics of 4 lesion-rich patches under a fast "
            "changing network left eval-mode predictions swinging between half-right and empty from epoch to epoch.",
            "batch norm": "one 3x3x3 conv shared by the recurrent steps, one batch norm per step (recurrent batch "
            "normalisation, Cooijmans et al. 2017): a norm shared across steps mixes two input distributions in "
            "its running statistics and fails at inference.",
            "min_lesion_voxels": "post-processing is mentioned but not described; 0 (none) by default, tunable "
            "removal of connected components smaller than this.",
            "epochs": "70 as in the paper; the weights kept are those of the epoch with the best validation Dice "
            "(the paper does not say which epoch it kept).",
            "smoke": "base width 8, t=1, transposed-conv up-sampling, instance norm, 0.2 BCE + 0.8 batch Dice, lr "
            "3e-3, 32^3 patches on a stride-16 grid, half of them lesion-containing, no rotation or elastic "
            "deformation, 12 epochs of 10 steps of 4 patches. The half share of lesion patches (the paper draws "
            "only lesion patches) was chosen on the validation patient among the card's smoke_candidates; `msbench "
            "methods show fsh` prints the selection's record.",
            "batch_dice": "the paper's Dice formula sums over voxels without saying whether over one patch or the "
            "batch; per patch (False) by default, batch Dice on smoke where patches hold few lesion voxels.",
            "quick": "the paper's network and patches, 20 epochs of 50 steps at lr 3e-4 with early stopping: "
            "one GPU hour for all methods.",
        },
        family="fsh",
        smoke_candidates={"positive_fraction 1.0": {"positive_fraction": 1.0}},  # F.sh's: lesion patches only
    )
)
