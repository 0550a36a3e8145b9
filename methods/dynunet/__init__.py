"""MONAI DynUNet (nnU-Net's residual 3D U-Net): a strong 3D library baseline on the engine's patch pipeline."""
