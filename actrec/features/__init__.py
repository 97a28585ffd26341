"""Frame features: backbones, the engines that run them, the extractor, and the feature store (cache + HDF5)."""
