"""The Bus between inputs and processing: in-process memory by default, distributed backends later."""
