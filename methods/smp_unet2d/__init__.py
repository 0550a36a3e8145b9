"""2D U-Net from segmentation-models-pytorch with a timm encoder: a library baseline on axial slices."""
