"""Serving stacks and quantization: the software side of a prediction (stack.py, quant.py, params.py)."""
