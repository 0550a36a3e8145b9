"""MONAI SegResNet: a strong 3D library baseline on the engine's patch pipeline."""
