"""A greeting: the Python half of the second project."""


def greeting(name: str) -> str:
    """The greeting for `name`."""
    return f"Hello, {name}!"
