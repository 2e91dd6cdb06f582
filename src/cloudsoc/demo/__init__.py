"""The simulated company behind ``cloudsoc demo``: people, keys and a week of cloud activity with an attack.

Entry point: :class:`cloudsoc.demo.generator.DemoGenerator`.
"""
