"""MONAI BasicUNet: a small trainable 3D U-Net baseline on the engine's patch pipeline."""
