"""fix: factorise wide convs into a 1x1 bottleneck + KxK and prove it with onnxruntime."""
