"""Feed importers, one module per format. Each is pure: bytes (+ file name, source) in, an ImportResult out."""
