"""Card of ``nnunet2d``: the real nnU-Net v2 ``2d`` configuration (Darestani et al. 2025). Torch-free."""

from __future__ import annotations

from ..card import CategoricalParam, Claim, FloatParam, MethodCard, Recipe
from ..registry import register

_INTERNAL = "103 patients, Imam Khomeini Hospital, Tehran (1.5 T FLAIR, 5.5 mm slices), internal test set"
_EXTERNAL = "10 patients from an external centre, external test set"
_TEST_SPLIT = "25 % of each patient's images held out as test; training split by patient (paper, Results)"


_ENTROPY_NOTE = (
    "the images are the slices left after the entropy check (entropy < 0.01 dropped): lesion slices with at least "
    "34 lesion pixels on a 181x217 slice at 1 mm (226 on the paper's 512x512 slices); dice_lesion_slices keeps every "
    "lesion slice, so it also scores the small-lesion slices the paper dropped"
)
_VOXEL_NOTE = (
    "voxel-level test metrics on the test images, which are the entropy-filtered lesion slices (the lesion-free "
    "slices enter only the slice classification); the paper reports slice-level confidence intervals but does not "
    "say whether it averaged per slice or pooled. " + _ENTROPY_NOTE
)
_BALANCED_NOTE = (
    "a balanced slice set: 'normal data were randomly selected in quantities equal to the existing test data' "
    "(Results), 218 lesion and 218 lesion-free slices at centre 1, 23 and 23 at centre 2, counted together"
)
# Voxel-level keys on the lesion slices: Dice has one (dice_lesion_slices); sensitivity is the whole-volume number
# (every reference voxel lies in a lesion slice). msbench has no PPV, IoU or HD95 on lesion slices only: the
# whole-volume keys are shown with their unit, not as like for like (3D HD95 also differs from a per-slice 2D one).
_VOXEL_KEYS = {
    "dice": ("dice_lesion_slices", True),
    "ppv": ("ppv", False),
    "jaccard": ("jaccard", False),
    "sensitivity": ("sensitivity", True),
    "hd95_mm": ("hd95_mm", False),
}


def _claims() -> tuple[Claim, ...]:
    claims = [
        Claim(
            "dice",
            0.867,
            "103 patients, Imam Khomeini Hospital (validation folds)",
            "5-fold cross-validation, mean of the folds' validation Dice (std 0.0254)",
            "Table 4",
            private_data=True,
            note="per-fold 0.835, 0.894, 0.884, 0.875, 0.845",
            unit="lesion_slices",
            aggregation="per_fold_mean",
            msbench_metric="dice_lesion_slices",
            unit_note=_ENTROPY_NOTE,
        )
    ]
    # Table 5, centre 1 (internal) and centre 2 (external); the paper's figures are percent, here fractions.
    table5 = {
        "dice": (0.703, 0.748),
        "ppv": (0.753, 0.889),
        "jaccard": (0.560, 0.605),
        "sensitivity": (0.711, 0.681),
        "hd95_mm": (28.3, 31.5),
        "slice_accuracy": (0.833, 0.761),
        "slice_sensitivity": (0.995, 1.0),
        "slice_ppv": (0.751, 0.677),
        "slice_npv": (0.993, 1.0),
    }
    for metric, values in table5.items():
        if metric.startswith("slice_"):
            level = "slice-level classification"
            unit, aggregation, note = "balanced_slices", "pooled", _BALANCED_NOTE
            key, comparable = metric.replace("slice_", "slice_bal_"), True
        else:
            level = "voxel-level segmentation"
            unit, aggregation, note = "lesion_slices", "not_reported", _VOXEL_NOTE
            key, comparable = _VOXEL_KEYS[metric]
        for (data, split, centre), value in zip(
            ((_INTERNAL, _TEST_SPLIT, 1), (_EXTERNAL, "external centre, never trained on", 2)), values, strict=True
        ):
            claims.append(
                Claim(
                    metric,
                    value,
                    data,
                    split,
                    f"Table 5, {level}, centre {centre}",
                    True,
                    unit=unit,
                    aggregation=aggregation,
                    msbench_metric=key,
                    comparable=comparable,
                    unit_note=note,
                )
            )
    return tuple(claims)


CARD = register(
    MethodCard(
        name="nnunet2d",
        title="nnU-Net v2, 2d configuration, with entropy-based slice exclusion and 2D augmentation",
        citation=(
            "Darestani AA, Naeeni Davarani M, Guillen-Canas V, Hashemi H, Zarei A, Heydari Havadaragh S, "
            "Harirchian MH. Convolutional neural network based system for fully automatic FLAIR MRI segmentation "
            "in multiple sclerosis diagnosis. Scientific Reports 15 (2025). doi:10.1038/s41598-025-14112-x"
        ),
        input_kind="2D",
        modalities=("flair",),
        adapter="msbench.methods.nnunet2d.adapter:NnUNet2dAdapter",
        defaults={
            "initial_lr": 0.01,
            "weight_decay": 3e-5,
            "momentum": 0.99,
            "entropy_threshold": 0.01,
            "paper_augmentation": True,
            "batch_size": None,
            "val_iterations_per_epoch": 50,
            "checkpoint": "final",
            "test_time_mirroring": True,
        },
        search_space={
            "initial_lr": FloatParam(1e-3, 3e-2, log=True),
            "entropy_threshold": FloatParam(0.0, 0.05),
            "paper_augmentation": CategoricalParam((True, False)),
        },
        recipes={
            # epochs and iterations are nnU-Net's (num_epochs, num_iterations_per_epoch); batch_size None lets
            # nnU-Net plan it (12 is its 2D reference batch at 8 GB).
            # smoke: a CPU pipeline check that must still learn; see choices["smoke"] for why both extras are off.
            "smoke": Recipe(
                epochs=8,
                batch_size=4,
                iterations_per_epoch=40,
                overrides={
                    "batch_size": 4,
                    "val_iterations_per_epoch": 2,
                    "test_time_mirroring": False,
                    "entropy_threshold": 0.0,
                    "paper_augmentation": False,
                },
            ),
            "quick": Recipe(
                epochs=50, batch_size=12, iterations_per_epoch=100, overrides={"val_iterations_per_epoch": 10}
            ),
            "paper": Recipe(epochs=250, batch_size=12, iterations_per_epoch=250),
        },
        claims=_claims(),
        choices={
            "framework": "The real nnunetv2 package drives everything: dataset fingerprint, ExperimentPlanner, "
            "DefaultPreprocessor, an nnUNetTrainer subclass and nnUNetPredictor. Each fit writes its own nnU-Net raw, "
            "preprocessed and results folders inside the run directory; the nnU-Net stages run in a child process "
            "whose environment points there, so nothing global is read or written.",
            "splits": "splits_final.json holds one fold written by msbench: train = the fold's training patients, "
            "val = its validation patients; nnU-Net trains fold 0 and never draws its own folds. Test cases never "
            "enter the nnU-Net folders.",
            "configuration": "Only the 2d configuration is planned into a training. Slicing is axial: the planner "
            "runs with suppress_transpose so that nnU-Net's first axis stays the volume's axial (last NIfTI) axis, "
            "read with nnU-Net's NibabelIO. On anisotropic clinical scans nnU-Net would pick that axis anyway.",
            "intensity": "The paper scales each image to [0, 1] before nnU-Net; nnU-Net's z-score normalisation "
            "(its default for MRI) makes that linear step irrelevant, so images enter unscaled.",
            "resizing": "The paper resizes to 512x512 pixels (their scanner's matrix). Not done: nnU-Net resamples "
            "in-plane to the dataset's median spacing itself, and the benchmark data are near-isotropic.",
            "entropy_threshold": "Slices whose reference mask has Shannon entropy (bits, over the whole axial slice "
            "of the native grid) below the threshold are dropped from training: lesion-free slices have entropy 0, "
            "so nnU-Net trains on lesion slices only, as the paper did. Mechanism: the trainer's training dataset "
            "exposes only the kept slices of each preprocessed case to nnU-Net's 2D data loader; a case without a "
            "kept slice leaves the training set. Validation batches and prediction see whole volumes. The filter "
            "drops small-lesion slices too, not only lesion-free ones: entropy < 0.01 bits means fewer than 34 lesion "
            "pixels on a 181x217 axial slice (ISBI 2015 at 1 mm) and fewer than 226 on the paper's 512x512 slices.",
            "folds": "The paper trains nnU-Net's five cross-validation folds; the adapter trains one model (nnU-Net "
            "fold 0 = the msbench fold's training / validation patients) and predicts with that one model, not with "
            "nnU-Net's default five-fold ensemble. Its numbers are one model's, and the paper's Table 5 may be an "
            "ensemble's (the paper does not say).",
            "paper_augmentation": "The paper's 2D augmentation (rotation +-40 deg, width and height shift +-20 %, "
            "shear +-20 deg, zoom +-20 % per axis, horizontal flip; Keras-style nearest-border fill) runs as one "
            "affine step before nnU-Net's own augmentation pipeline, which the paper left unchanged. The paper wrote "
            "five augmented copies per slice next to the original; online, each sample is augmented with "
            "probability 5/6. The horizontal flip mirrors the left-right (first NIfTI) axis with probability 0.5.",
            "optimiser": "nnU-Net's defaults, as in the paper: SGD with Nesterov momentum 0.99, weight decay 3e-5, "
            "initial lr 0.01 with polynomial decay, Dice + cross-entropy with deep supervision.",
            "batch_size": "None keeps nnU-Net's planned 2D batch size; the smoke budget fixes 4 for CPU speed.",
            "smoke": "The smoke budget (3 mm phantom, 2 CPU cores) trains plain nnU-Net 2d: entropy_threshold 0 (every "
            "slice) and no paper augmentation; quick and paper keep both extras. Leaving both off on smoke was "
            "chosen on the validation patient among the card's smoke_candidates; `msbench methods show nnunet2d` "
            "prints the selection's record.",
            "checkpoint": "'final' predicts with nnU-Net's checkpoint_final.pth (its default); 'best' with "
            "checkpoint_best.pth, chosen by nnU-Net's EMA pseudo-Dice on the validation patients.",
            "test_time_mirroring": "nnU-Net's predictor averages the network over mirrored inputs (its default, kept); "
            "the smoke budget switches it off, which makes CPU prediction four times faster.",
            "postprocessing": "nnU-Net's 'keep the largest connected component' post-processing is never applied: "
            "MS is multi-focal.",
            "slice_level": "The paper's slice-level classification (a positive slice needs a predicted lesion "
            "overlapping the reference by >= 10 %) is reported by msbench's metric suite for every method "
            "(columns slice_*); the adapter computes nothing extra.",
            "determinism": "On CPU, data augmentation runs in the training process (nnUNet_n_proc_DA=0) and every "
            "generator is seeded, so a seed reproduces the run; on CUDA nnU-Net's augmentation workers are used "
            "and runs are not bit-identical.",
        },
        smoke_candidates={
            "paper_augmentation": {"paper_augmentation": True},
            "entropy_threshold 0.01": {"entropy_threshold": 0.01},  # the paper's slice filter
        },
    )
)
