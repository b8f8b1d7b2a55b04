"""Lambda handlers, one package per function (functions/<name>/handler.py); tests in tests/functions/."""
