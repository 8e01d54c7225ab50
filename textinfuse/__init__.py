"""TextInfuse: the console script (`cli`) and the base modules every layer may use (configio, metrics, ocr,
progress, files, images, png_reader)."""

__version__ = "0.1.0"
