"""FC-DenseNet + SA + ConvLSTM (Rondinella et al. 2023), its ablations, and the shared 2D / 2.5D slice pipeline."""
