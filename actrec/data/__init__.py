"""Videos in, clip tables out: decoding and frame sampling, dataset layouts, splits, the synthetic demo."""
