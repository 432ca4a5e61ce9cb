"""This project's own checkov checks (tests/test_checkov.py); checkov loads only folders
that have an __init__.py."""
