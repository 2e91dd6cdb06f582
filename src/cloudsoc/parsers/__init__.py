"""Pure parsers: a decoded record (dict) in, an ECS document (dict) out. No I/O, no clock."""
