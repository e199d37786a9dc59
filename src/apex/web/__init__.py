"""The static chat UI, shipped inside the package so running Apex needs no Node toolchain."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
