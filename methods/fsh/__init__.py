"""F.sh (3DR2AUNet): a 3D recurrent-residual attention U-Net on FLAIR patches (Esmaeili Shafaei)."""
