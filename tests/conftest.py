"""Shared by every test. Its presence puts this folder on `sys.path` (pytest's default import mode, no
`__init__.py` here), so tests import shared helpers such as `civil_helpers` by module name."""
