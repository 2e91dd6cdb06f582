"""The SSH bastion: one audited door to the company's servers (docs/specs/bastion.md)."""
