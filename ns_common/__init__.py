"""Code that more than one stage needs: readers, tokenisation, metrics, the model factory,
the offline bootstrap, the shared semantic encoder and a Paddle Inference predictor."""
