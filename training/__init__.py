"""TextInfuse VAE trainer: a text-capable autoencoder trained on TextInfuse shards.

Needs the `train` extra (torch, safetensors, transformers, tensorboard): pip install 'textinfuse[train]'.
Importing this package is cheap; torch is imported by the submodules (`models`, `losses`, `data`, `loop`).
"""
