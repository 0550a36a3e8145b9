"""nnU-Net v2's 2d configuration driven from Python (Darestani et al. 2025): entropy slice filter, 2D augmentation."""
