"""Model flavors: save and load scikit-learn (skops), generic Python and ONNX models."""
