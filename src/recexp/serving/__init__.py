"""Using a trained model: bundles on disk, top-k in raw ids, the MLflow pyfunc flavour."""
