"""3D U-Net (Kabulov): a volumetric U-Net on the brain crop resampled to 160x160x96."""
