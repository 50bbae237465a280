"""Data shipped with kirag (see README.md in this folder for provenance and licence)."""
